// Optimizers
