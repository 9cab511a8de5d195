// See include/machine.h. Twelve independent accumulator chains hide the FMA latency, so the loop
// runs at the throughput of the FMA ports.
#define _GNU_SOURCE
#include "machine.h"

#include <immintrin.h>
#include <sched.h>
#include <unistd.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static double chains_avx512(long rounds) {
    __m512 acc[12];
    __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < rounds; i++)
        for (int k = 0; k < 12; k++) acc[k] = _mm512_fmadd_ps(acc[k], b, c);
    float sink = 0;
    for (int k = 0; k < 12; k++) sink += _mm512_reduce_add_ps(acc[k]);
    return sink;
}

__attribute__((target("avx2,fma"))) static double chains_avx2(long rounds) {
    __m256 acc[12];
    __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < rounds; i++)
        for (int k = 0; k < 12; k++) acc[k] = _mm256_fmadd_ps(acc[k], b, c);
    float values[8], sink = 0;
    for (int k = 0; k < 12; k++) {
        _mm256_storeu_ps(values, acc[k]);
        for (int j = 0; j < 8; j++) sink += values[j];
    }
    return sink;
}

static double chains_scalar(long rounds) {
    float acc[12];
    for (int k = 0; k < 12; k++) acc[k] = (float)k;
    for (long i = 0; i < rounds; i++)
        for (int k = 0; k < 12; k++) acc[k] = acc[k] * 0.9999999f + 1e-7f;
    float sink = 0;
    for (int k = 0; k < 12; k++) sink += acc[k];
    return sink;
}

/* vdpbf16ps: per lane, acc += a[2i]·b[2i] + a[2i+1]·b[2i+1], 32 multiply-adds per instruction. */
__attribute__((target("avx512f,avx512bf16"))) static double chains_bf16(long rounds) {
    __m512 acc[12];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3A83); /* about 0.001 */
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3F80); /* 1.0 */
    for (int k = 0; k < 12; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < rounds; i++)
        for (int k = 0; k < 12; k++) acc[k] = _mm512_dpbf16_ps(acc[k], a, b);
    float sink = 0;
    for (int k = 0; k < 12; k++) sink += _mm512_reduce_add_ps(acc[k]);
    return sink;
}

static int lanes(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
    return 1;
}

const char *sagan_fma_instruction_set(void) {
    int width = lanes();
    return width == 16 ? "avx512" : (width == 8 ? "avx2" : "scalar");
}

enum kind { FMA, BF16_DOT };

static double run(enum kind kind, long rounds) {
    if (kind == BF16_DOT) return chains_bf16(rounds);
    int width = lanes();
    return width == 16 ? chains_avx512(rounds) : (width == 8 ? chains_avx2(rounds) : chains_scalar(rounds));
}

/* FLOPs of one round of twelve chains. */
static double flops_per_round(enum kind kind) {
    return kind == BF16_DOT ? 12.0 * 16 * 2 * 2 : 12.0 * lanes() * 2;
}

typedef struct {
    enum kind kind;
    long rounds;
    double sink;
    int cpu;
} job;

static void *worker(void *argument) {
    job *work = argument;
    // Each worker on its own CPU: the calling thread may be bound to one CPU (OpenMP's
    // OMP_PROC_BIND binds the initial thread), and new threads would inherit that binding.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(work->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    work->sink = run(work->kind, work->rounds);
    return 0;
}

/* The CPUs of the process: SAGAN_PROCESS_CPUS ("0,1,5"), else every online CPU. */
static int process_cpus(int *cpus, int capacity) {
    int count = 0;
    const char *list = getenv("SAGAN_PROCESS_CPUS");
    while (list && *list && count < capacity) {
        char *end;
        long cpu = strtol(list, &end, 10);
        if (end == list || cpu < 0 || cpu >= CPU_SETSIZE) break;
        cpus[count++] = (int)cpu;
        list = *end == ',' ? end + 1 : end;
    }
    if (count > 0) return count;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (long cpu = 0; cpu < online && count < capacity; cpu++) cpus[count++] = (int)cpu;
    return count > 0 ? count : 1;
}

void sagan_remember_process_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return;
    char list[8 * CPU_SETSIZE];
    size_t length = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        length += (size_t)snprintf(list + length, sizeof list - length, length ? ",%d" : "%d", cpu);
    }
    if (length > 0) setenv("SAGAN_PROCESS_CPUS", list, 1);
}

static double peak_gflops(enum kind kind, int threads, double seconds) {
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    // Calibrate the round count on one thread, then run all threads together.
    long rounds = 1 << 16;
    double elapsed = 0;
    while (1) {
        double start = now();
        volatile double sink = run(kind, rounds);
        (void)sink;
        elapsed = now() - start;
        if (elapsed > 0.05 || rounds > (1L << 34)) break;
        rounds *= 2;
    }
    rounds = (long)(rounds * (seconds / elapsed));
    if (rounds < 1) rounds = 1;
    pthread_t ids[256];
    job jobs[256];
    double start = now();
    int cpus[CPU_SETSIZE];
    int count = process_cpus(cpus, CPU_SETSIZE);
    for (int t = 0; t < threads; t++) {
        jobs[t].kind = kind;
        jobs[t].rounds = rounds;
        jobs[t].cpu = cpus[t % count];
        pthread_create(&ids[t], 0, worker, &jobs[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(ids[t], 0);
    double wall = now() - start;
    return (double)rounds * flops_per_round(kind) * threads / wall / 1e9;
}

double sagan_fma_peak_gflops(int threads, double seconds) {
    return peak_gflops(FMA, threads, seconds);
}

double sagan_bf16_peak_gflops(int threads, double seconds) {
    return sagan_cpu_has_avx512_bf16() ? peak_gflops(BF16_DOT, threads, seconds) : 0;
}

void sagan_thread_allow_process_cpus(void) {
    int cpus[CPU_SETSIZE];
    int count = process_cpus(cpus, CPU_SETSIZE);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int k = 0; k < count; k++) CPU_SET(cpus[k], &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void sagan_keep_freed_buffers_mapped(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* glibc's largest allowed threshold */
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

// CPUID leaf 7: sub-leaf 1 EAX bit 5 is AVX512_BF16; sub-leaf 0 EDX bits 22 and 24 are AMX-BF16
// and AMX-TILE. The OS must also save the state (XCR0): the AVX-512 bits 5-7 for AVX512_BF16, the
// tile bits 17-18 for AMX (Linux additionally grants AMX per process on request).
#include <cpuid.h>

static unsigned long long xcr0(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; // no OSXSAVE
    unsigned int low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((unsigned long long)high << 32) | low;
}

int sagan_cpu_has_avx512_bf16(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a & (1u << 5)) && (xcr0() & 0xE0) == 0xE0;
}

int sagan_cpu_has_amx_bf16(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (d & (1u << 22)) && (d & (1u << 24)) && (xcr0() & 0x60000) == 0x60000;
}
