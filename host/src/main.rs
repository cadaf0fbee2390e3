// jemalloc instead of glibc malloc: a server that compiled a thousand uploads kept over 500 MiB
// of freed memory in glibc's per-thread arenas (BENCHMARKS.md, scale).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    tollgate::cli::main()
}
