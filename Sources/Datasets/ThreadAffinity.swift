import CMachine

/// `sagan` pins OpenMP's threads (OMP_PROC_BIND=true), which also binds the main thread to one
/// CPU, and threads inherit their creator's binding. Worker threads of our own (the batch
/// loader, the packer's decoders) call this so they may run on every CPU of the process (under
/// mpirun, those of its rank's binding).
enum ThreadAffinity {
    static func allowProcessCPUs() { sagan_thread_allow_process_cpus() }
}
