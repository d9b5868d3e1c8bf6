//! What the benches read of a child process from `/proc` (Linux).

/// Peak resident memory (`VmHWM` of `/proc/PID/status`), in KB; 0 if unreadable.
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Context switches so far, voluntary (the process waited: a socket, a timer) and not,
/// summed over its live threads (`/proc/PID/task/*/status`); 0 if unreadable.
#[allow(dead_code)] // not every bench reads it
pub fn context_switches(pid: u32) -> (u64, u64) {
    let mut sum = (0, 0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return sum;
    };
    for t in tasks.flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let n = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("voluntary_ctxt_switches:") {
                sum.0 += n(line);
            } else if line.starts_with("nonvoluntary_ctxt_switches:") {
                sum.1 += n(line);
            }
        }
    }
    sum
}
