//! Benchmarks live in `benches/`; this library holds what several of them measure with.

use std::time::Duration;

/// CPU time (user + system) that every thread of this process has used so far.
///
/// Read from `CLOCK_PROCESS_CPUTIME_ID`, which counts to the nanosecond, where the times in
/// `/proc/self/stat` move in 10 ms ticks: over a phase of 10,000 messages a tick is 1 µs a
/// message, as much as the difference being measured.
///
/// The call is `unsafe` FFI, for want of a safe wrapper that fits: rustix's own backend
/// faults under valgrind (its vDSO reader), which the instruction counts run the benches in,
/// and its libc backend is a crate-wide feature: it would also change how async-io, under
/// the async-std and smol clients measured here, makes its system calls.
#[allow(unsafe_code)]
pub fn process_cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable `timespec` that outlives the call, and
    // `CLOCK_PROCESS_CPUTIME_ID` is a clock every Linux kernel since 2.6.12 has.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Tells a `perf stat --control fifo:…` (or `perf record --control …`) that waits on the FIFO
/// named by `BENCH_PERF_CTL` to count (`"enable"`) or stop (`"disable"`), so that it counts
/// one phase of a run and not its set-up; with `BENCH_PERF_ACK`, waits for perf's answer on
/// that FIFO. Without the variables, does nothing.
///
/// `mkfifo /tmp/ctl /tmp/ack; BENCH_PERF_CTL=/tmp/ctl BENCH_PERF_ACK=/tmp/ack perf stat -D -1
/// --control fifo:/tmp/ctl,/tmp/ack -e … <bench>`
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
