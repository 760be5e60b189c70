//! `ringlb --version`: the version and commit, the kernel, and what its io_uring offers
//! (probed, not assumed), so a bug report says what ran where; and the reason io_uring
//! cannot be used, when it cannot, for the error at start.

use std::fmt::Write as _;

use io_uring::{opcode, IoUring, Probe};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Short hash of the commit built (`build.rs`), or `unknown` in a build without git.
pub const COMMIT: &str = env!("RINGLB_COMMIT");

pub fn long_version() -> String {
    let mut out = format!("ringlb {VERSION} (commit {COMMIT})\n");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let _ = writeln!(out, "kernel: Linux {kernel}");
    let _ = writeln!(out, "io_uring: {}", io_uring_summary());
    out
}

fn io_uring_summary() -> String {
    let ring = match IoUring::new(8) {
        Ok(r) => r,
        Err(e) => return format!("unavailable: {}", unavailable_reason(&e)),
    };
    let p = ring.params();
    let features = [
        ("nodrop", p.is_feature_nodrop()),
        ("fast_poll", p.is_feature_fast_poll()),
        ("ext_arg", p.is_feature_ext_arg()),
        ("native_workers", p.is_feature_native_workers()),
        ("cqe_skip", p.is_feature_skip_cqe_on_success()),
        ("linked_file", p.is_feature_linked_file()),
        ("recvsend_bundle", p.is_feature_recvsend_bundle()),
        ("min_timeout", p.is_feature_min_timeout()),
    ];
    let mut probe = Probe::new();
    let probed = ring.submitter().register_probe(&mut probe).is_ok();
    let ops = [
        ("accept", opcode::Accept::CODE),
        ("connect", opcode::Connect::CODE),
        ("recv", opcode::Recv::CODE),
        ("send", opcode::Send::CODE),
        ("poll_add", opcode::PollAdd::CODE),
        ("splice", opcode::Splice::CODE),
        ("socket", opcode::Socket::CODE),
        ("send_zc", opcode::SendZc::CODE),
        ("recv_multi", opcode::RecvMulti::CODE),
        ("close", opcode::Close::CODE),
    ];
    let mut s = String::from("available; features:");
    for (name, on) in features {
        if on {
            let _ = write!(s, " {name}");
        }
    }
    if probed {
        s.push_str("; ops:");
        for (name, code) in ops {
            if probe.is_supported(code) {
                let _ = write!(s, " {name}");
            }
        }
    }
    let defer = IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)
        .is_ok();
    let _ = write!(s, "; defer_taskrun: {}", if defer { "yes" } else { "no" });
    s
}

/// The oldest kernel ringlb runs on: multishot accept and provided buffer rings (5.19).
/// 6.1 adds `DEFER_TASKRUN`, which the workers use where present.
pub const MIN_KERNEL: (u32, u32) = (5, 19);

/// Why this kernel is too old, from its release string (`/proc/sys/kernel/osrelease`,
/// e.g. `6.1.0-18-amd64`); `None` when it is new enough or cannot be read as a version.
pub fn kernel_too_old(release: &str) -> Option<String> {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next()??, parts.next()??);
    ((major, minor) < MIN_KERNEL).then(|| {
        format!(
            "Linux {release} is too old: ringlb needs {}.{} or later (multishot accept and \
             provided buffer rings in io_uring; 6.1 or later recommended)",
            MIN_KERNEL.0, MIN_KERNEL.1
        )
    })
}

/// The running kernel's [`kernel_too_old`].
pub fn running_kernel_too_old() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| kernel_too_old(r.trim()))
}

/// Why io_uring cannot be used, in words an operator can act on.
pub fn unavailable_reason(e: &std::io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    match (e.raw_os_error(), disabled) {
        (Some(libc::ENOSYS), _) => {
            format!(
                "{e}: this kernel has no io_uring (ringlb needs Linux {}.{} or later)",
                MIN_KERNEL.0, MIN_KERNEL.1
            )
        }
        (Some(libc::EPERM), Some(n)) if n > 0 => format!(
            "{e}: io_uring is disabled on this host (sysctl kernel.io_uring_disabled = {n}; \
             0 allows it, 1 only for the io_uring_group)"
        ),
        (Some(libc::EPERM), _) => format!(
            "{e}: io_uring is blocked, most likely by a seccomp profile (containers' default \
             profiles block io_uring_setup; allow io_uring_setup, io_uring_enter and \
             io_uring_register)"
        ),
        (Some(libc::ENOMEM), _) => format!(
            "{e}: io_uring rings count against RLIMIT_MEMLOCK: raise it (LimitMEMLOCK=infinity \
             in the systemd unit)"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_before_5_19_are_refused_by_name() {
        assert_eq!(kernel_too_old("6.18.44-fc-v595"), None);
        assert_eq!(kernel_too_old("6.1.0-18-amd64"), None);
        assert_eq!(kernel_too_old("5.19.0"), None);
        assert_eq!(
            kernel_too_old("5.15.0-91-generic").as_deref(),
            Some(
                "Linux 5.15.0-91-generic is too old: ringlb needs 5.19 or later (multishot \
                 accept and provided buffer rings in io_uring; 6.1 or later recommended)"
            )
        );
        assert!(kernel_too_old("4.19.0-26-amd64").is_some());
        // Not a version: nothing to say (io_uring's own error speaks at start).
        assert_eq!(kernel_too_old("unknown"), None);
    }
}
