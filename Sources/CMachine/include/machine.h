// Facts about and settings for this machine: fp32 FMA throughput for `sagan bench`'s "% of peak",
// thread affinity, and the C library's memory policy.
#ifndef SAGAN_MACHINE_H
#define SAGAN_MACHINE_H

/// GFLOP/s of independent FMA chains on `threads` threads run together for about `seconds`, each
/// on its own CPU of the process (see `sagan_thread_allow_process_cpus`), using the widest vector unit the CPU supports
/// (AVX-512, AVX2 + FMA, or scalar).
double sagan_fma_peak_gflops(int threads, double seconds);

/// GFLOP/s of independent bf16 dot-product chains (`vdpbf16ps`, two multiply-adds per Float32 lane)
/// on `threads` threads for about `seconds`: the bf16 peak. 0 without AVX512_BF16.
double sagan_bf16_peak_gflops(int threads, double seconds);

/// The instruction set the measurement used: "avx512", "avx2" or "scalar".
const char *sagan_fma_instruction_set(void);

/// Records the CPUs this process may run on, as it started (under mpirun: its rank's binding), in
/// the environment variable SAGAN_PROCESS_CPUS, for the process that an exec makes of it. Call it
/// before OpenMP binds the initial thread to one of them.
void sagan_remember_process_cpus(void);

/// Lets the calling thread run on every CPU of the process: those of SAGAN_PROCESS_CPUS, or every
/// online CPU. OMP_PROC_BIND binds the initial thread to one CPU and new threads inherit that
/// binding; worker threads of our own undo it with this.
void sagan_thread_allow_process_cpus(void);

/// Serves large allocations from the heap and never trims it (glibc), so buffers freed by one
/// training step stay mapped for the next instead of costing page faults and zeroing again.
void sagan_keep_freed_buffers_mapped(void);

/// Whether the CPU has AVX512_BF16 (bf16 dot products, `vdpbf16ps`) and the OS saves AVX-512 state.
int sagan_cpu_has_avx512_bf16(void);
/// Whether the CPU has AMX with bf16 tiles and the OS saves tile state.
int sagan_cpu_has_amx_bf16(void);
#endif
