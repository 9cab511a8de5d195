// Measures this CPU's fp32 fused-multiply-add throughput, for `sagan bench`'s "% of peak".
#ifndef SAGAN_MACHINE_H
#define SAGAN_MACHINE_H

/// GFLOP/s of independent FMA chains on `threads` threads run together for about `seconds`,
/// using the widest vector unit the CPU supports (AVX-512, AVX2 + FMA, or scalar).
double sagan_fma_peak_gflops(int threads, double seconds);

/// The instruction set the measurement used: "avx512", "avx2" or "scalar".
const char *sagan_fma_instruction_set(void);

/// Lets the calling thread run on every online CPU. OMP_PROC_BIND binds the initial thread to
/// one CPU and new threads inherit that binding; worker threads of our own undo it with this.
void sagan_thread_allow_all_cpus(void);

#endif
