"""The SAGAN of Tests/Reference/sagan_reference.py in TensorFlow 2, for timing against sagan (not for parity).

Same architecture and training step as `sagan train`: spectral norm with one power iteration on every
layer, the paper's attention (f, g with C/8 channels, h, softmax over keys, γ), shift-only batch norm
and ReLU in G, leaky ReLU 0.02 in D, hinge loss, Adam (β 0, 0.9) with lr D 4e-4 and G 1e-4, a D step on
real and fake images then a G step on fresh z. NHWC, as TensorFlow's CPU convolutions want.

`precision="bf16"` does what Keras's `mixed_bfloat16` policy does: variables stay float32 and are cast
to bf16 where used; convolutions, dense layers, the attention products and the activations between
layers run in bf16; batch-norm statistics, the softmax, spectral norm's σ and the losses in float32.
"""
import time

import tensorflow as tf


def l2n(x):
    return x / (tf.norm(x) + 1e-12)


class SpectralWeight(tf.Module):
    """A weight whose outputs lie along `output_axis`, normalised by σ from one power iteration."""

    def __init__(self, shape, output_axis):
        super().__init__()
        fan = 1
        for index, size in enumerate(shape):
            if index != output_axis:
                fan *= size
        limit = (6.0 / (fan + shape[output_axis])) ** 0.5
        self.w = tf.Variable(tf.random.uniform(shape, -limit, limit))
        self.output_axis = output_axis
        self.u = tf.Variable(l2n(tf.random.normal([shape[output_axis]])), trainable=False)

    def normalized(self, dtype):
        matrix = tf.reshape(tf.experimental.numpy.moveaxis(self.w, self.output_axis, 0), [self.u.shape[0], -1])
        v = tf.stop_gradient(l2n(tf.linalg.matvec(matrix, self.u, transpose_a=True)))
        u = tf.stop_gradient(l2n(tf.linalg.matvec(matrix, v)))
        self.u.assign(u)
        sigma = tf.tensordot(u, tf.linalg.matvec(matrix, v), 1)
        return tf.cast(self.w / sigma, dtype)


class Model(tf.Module):
    def __init__(self, config, dtype):
        super().__init__()
        self.config, self.dtype = config, dtype

    def channels(self, side):
        return self.config["baseWidth"] // side

    def attention_layer(self, channels):
        return {
            "f": SpectralWeight([1, 1, channels, channels // 8], 3), "fb": tf.Variable(tf.zeros([channels // 8])),
            "g": SpectralWeight([1, 1, channels, channels // 8], 3), "gb": tf.Variable(tf.zeros([channels // 8])),
            "h": SpectralWeight([1, 1, channels, channels], 3), "hb": tf.Variable(tf.zeros([channels])),
            "gamma": tf.Variable(0.0),
        }

    def attention(self, layer, x):
        b, height, width, c = x.shape
        n = height * width

        def project(name):
            y = tf.nn.conv2d(x, layer[name].normalized(self.dtype), 1, "VALID")
            return tf.reshape(y + tf.cast(layer[name + "b"], self.dtype), [b, n, -1])

        keys, queries, values = project("f"), project("g"), project("h")  # (B, N, C/8), (B, N, C/8), (B, N, C)
        scores = tf.matmul(queries, keys, transpose_b=True)  # (B, N queries, N keys)
        attention = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), self.dtype)
        attended = tf.reshape(tf.matmul(attention, values), [b, height, width, c])
        return attended * tf.cast(layer["gamma"], self.dtype) + x


class Generator(Model):
    def __init__(self, config, dtype):
        super().__init__(config, dtype)
        sides, side = [], 8
        while side <= config["resolution"]:
            sides.append(side)
            side *= 2
        self.sides = sides
        first = self.channels(4)
        self.project = SpectralWeight([config["latentSize"], first * 16], 1)
        self.project_bias = tf.Variable(tf.zeros([first * 16]))
        self.blocks = []
        for side in sides:
            inputs, outputs = self.channels(side // 2), self.channels(side)
            block = {"conv": SpectralWeight([4, 4, outputs, inputs], 2), "shift": tf.Variable(tf.zeros([outputs])),
                     "mean": tf.Variable(tf.zeros([outputs]), trainable=False),
                     "var": tf.Variable(tf.ones([outputs]), trainable=False)}
            if side in config["generatorAttentionSides"]:
                block["attention"] = self.attention_layer(outputs)
            self.blocks.append(block)
        self.output = SpectralWeight([3, 3, self.channels(sides[-1]), config["imageChannels"]], 3)
        self.output_bias = tf.Variable(tf.zeros([config["imageChannels"]]))

    def __call__(self, z):
        b = z.shape[0]
        h = tf.matmul(tf.cast(z, self.dtype), self.project.normalized(self.dtype))
        h = tf.nn.relu(tf.reshape(h + tf.cast(self.project_bias, self.dtype), [b, self.channels(4), 4, 4]))
        h = tf.transpose(h, [0, 2, 3, 1])  # NHWC
        for side, block in zip(self.sides, self.blocks):
            outputs = self.channels(side)
            h = tf.nn.conv2d_transpose(h, block["conv"].normalized(self.dtype), [b, side, side, outputs], 2, "SAME")
            x = tf.cast(h, tf.float32)
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
            momentum = self.config["batchNormMomentum"]
            block["mean"].assign((1 - momentum) * block["mean"] + momentum * mean)
            block["var"].assign((1 - momentum) * block["var"] + momentum * variance)
            x = tf.nn.batch_normalization(x, mean, variance, block["shift"], None, self.config["batchNormEpsilon"])
            h = tf.cast(tf.nn.relu(x), self.dtype)
            if "attention" in block:
                h = self.attention(block["attention"], h)
        y = tf.nn.conv2d(h, self.output.normalized(self.dtype), 1, "SAME") + tf.cast(self.output_bias, self.dtype)
        return tf.tanh(y)


class Discriminator(Model):
    def __init__(self, config, dtype):
        super().__init__(config, dtype)
        sides, side = [], config["resolution"] // 2
        while side >= 4:
            sides.append(side)
            side //= 2
        self.blocks, inputs = [], config["imageChannels"]
        for side in sides:
            outputs = self.channels(side)
            block = {"conv": SpectralWeight([4, 4, inputs, outputs], 3), "bias": tf.Variable(tf.zeros([outputs]))}
            if side in config["discriminatorAttentionSides"]:
                block["attention"] = self.attention_layer(outputs)
            self.blocks.append(block)
            inputs = outputs
        self.head = SpectralWeight([self.channels(4) * 16, 1], 1)
        self.head_bias = tf.Variable(tf.zeros([1]))

    def __call__(self, x):
        h = tf.cast(x, self.dtype)
        for block in self.blocks:
            h = tf.nn.conv2d(h, block["conv"].normalized(self.dtype), 2, [[0, 0], [1, 1], [1, 1], [0, 0]])
            h = tf.nn.leaky_relu(h + tf.cast(block["bias"], self.dtype), self.config["leakySlope"])
            if "attention" in block:
                h = self.attention(block["attention"], h)
        logits = tf.matmul(tf.reshape(h, [h.shape[0], -1]), self.head.normalized(self.dtype))
        return tf.cast(logits, tf.float32) + self.head_bias


class Adam:
    """PyTorch's Adam (as `sagan train` uses it), slots in float32."""

    def __init__(self, variables, learning_rate, beta1=0.0, beta2=0.9, epsilon=1e-8):
        self.variables = variables
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.t = tf.Variable(0.0, trainable=False)
        self.rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon

    def apply(self, gradients):
        self.t.assign_add(1.0)
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        for variable, gradient, m, v in zip(self.variables, gradients, self.m, self.v):
            m.assign(self.beta1 * m + (1 - self.beta1) * gradient)
            v.assign(self.beta2 * v + (1 - self.beta2) * tf.square(gradient))
            variable.assign_sub(m / (tf.sqrt(v / c2) + self.epsilon) * (self.rate / c1))


def time_training(config, batch, iterations, warmup, threads, precision):
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    tf.random.set_seed(0)
    G, D = Generator(config, dtype), Discriminator(config, dtype)
    opt_g, opt_d = Adam(list(G.trainable_variables), 1e-4), Adam(list(D.trainable_variables), 4e-4)
    side = config["resolution"]
    real = tf.random.uniform([batch, side, side, config["imageChannels"]], -1, 1)

    @tf.function
    def step():
        fake = tf.stop_gradient(G(tf.random.normal([batch, config["latentSize"]])))
        with tf.GradientTape() as tape:
            loss_d = tf.reduce_mean(tf.nn.relu(1 - D(real))) + tf.reduce_mean(tf.nn.relu(1 + D(fake)))
        opt_d.apply(tape.gradient(loss_d, opt_d.variables))
        with tf.GradientTape() as tape:
            loss_g = -tf.reduce_mean(D(G(tf.random.normal([batch, config["latentSize"]]))))
        opt_g.apply(tape.gradient(loss_g, opt_g.variables))
        return loss_d, loss_g

    times = []
    for iteration in range(warmup + iterations):
        start = time.perf_counter()
        losses = step()
        float(losses[0])  # waits for the step
        if iteration >= warmup:
            times.append(time.perf_counter() - start)
    return times, tf.__version__
