//! Benchmarks live in `benches/`; this library holds what several of them measure with.

use std::time::Duration;

/// CPU time (user + system) that every thread of this process has used so far.
///
/// Read from `CLOCK_PROCESS_CPUTIME_ID`, which counts to the nanosecond, where the times in
/// `/proc/self/stat` move in 10 ms ticks: over a phase of 10,000 messages a tick is 1 µs a
/// message, as much as the difference being measured.
pub fn process_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Tells a `perf stat --control fifo:…` (or `perf record --control …`) that waits on the FIFO
/// named by `BENCH_PERF_CTL` to count (`"enable"`) or stop (`"disable"`), so that it counts
/// one phase of a run and not its set-up. Without the variable, does nothing.
///
/// `mkfifo /tmp/ctl /tmp/ack; BENCH_PERF_CTL=/tmp/ctl perf stat -D -1 --control
/// fifo:/tmp/ctl,/tmp/ack -e … <bench>`
pub fn perf_control(command: &str) {
    let Some(path) = std::env::var_os("BENCH_PERF_CTL") else {
        return;
    };
    let ack = std::env::var_os("BENCH_PERF_ACK");
    if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(path) {
        use std::io::Write;
        let _ = writeln!(fifo, "{command}");
    }
    // perf answers "ack" once the counters are switched.
    if let Some(Ok(ack)) = ack.map(std::fs::File::open) {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(ack).read_line(&mut String::new());
    }
}
