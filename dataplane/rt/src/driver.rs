//! Choosing the I/O driver: io_uring when the kernel lets us, epoll otherwise.
//!
//! Decided once, in the main thread, before any worker starts: every worker
//! uses the same driver. `auto` falls back to epoll with one warning that says
//! why (the errno of `io_uring_setup`, the `kernel.io_uring_disabled` sysctl,
//! a missing opcode); `on` refuses to start with the same explanation; `off`
//! uses epoll without probing.

use std::fmt;

use serde::Deserialize;

/// The `io_uring` config key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Uring,
    Epoll,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uring => "io_uring",
            Self::Epoll => "epoll",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The driver every worker will use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverChoice {
    pub driver: Driver,
    /// Empty when io_uring was chosen; otherwise why not.
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "io_uring = \"on\" but io_uring is unavailable: {0} (check seccomp — Docker's default profile blocks io_uring —, the kernel.io_uring_disabled sysctl, and RLIMIT_MEMLOCK on kernels before 5.12; or set io_uring = \"auto\")"
)]
pub struct UringRefused(pub String);

/// Why io_uring cannot be used here, or `None` when it can.
pub fn uring_unavailable_reason() -> Option<String> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        match v.trim() {
            "0" | "" => {}
            "1" => {
                // 1 = only the io_uring_group may create rings; probing tells.
            }
            other => return Some(format!("sysctl kernel.io_uring_disabled = {other}")),
        }
    }
    if let Err(e) = io_uring::IoUring::new(2) {
        return Some(format!("io_uring_setup failed: {e}"));
    }
    if !monoio::utils::detect_uring() {
        return Some("the kernel's io_uring lacks an opcode the runtime needs".to_owned());
    }
    None
}

/// Decides the driver for `mode`.
pub fn choose(mode: IoMode) -> Result<DriverChoice, UringRefused> {
    match mode {
        IoMode::Off => Ok(DriverChoice {
            driver: Driver::Epoll,
            reason: "io_uring = \"off\" in config".to_owned(),
        }),
        IoMode::On => match uring_unavailable_reason() {
            None => Ok(DriverChoice {
                driver: Driver::Uring,
                reason: String::new(),
            }),
            Some(reason) => Err(UringRefused(reason)),
        },
        IoMode::Auto => Ok(match uring_unavailable_reason() {
            None => DriverChoice {
                driver: Driver::Uring,
                reason: String::new(),
            },
            Some(reason) => {
                tracing::warn!(%reason, "io_uring unavailable; falling back to epoll");
                DriverChoice {
                    driver: Driver::Epoll,
                    reason,
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_never_probes_and_says_why() {
        let c = choose(IoMode::Off).expect("off");
        assert_eq!(c.driver, Driver::Epoll);
        assert!(c.reason.contains("off"));
    }

    #[test]
    fn auto_agrees_with_the_probe() {
        let c = choose(IoMode::Auto).expect("auto never fails");
        match uring_unavailable_reason() {
            None => assert_eq!(c.driver, Driver::Uring),
            Some(r) => assert_eq!(
                c,
                DriverChoice {
                    driver: Driver::Epoll,
                    reason: r
                }
            ),
        }
        // `on` succeeds exactly when auto picked io_uring.
        assert_eq!(choose(IoMode::On).is_ok(), c.driver == Driver::Uring);
    }

    /// Child side of `seccomp_refusal_falls_back_or_fails_clearly`: installs a
    /// filter that makes the io_uring syscalls fail with EPERM (as Docker's
    /// default profile does), then reports what each mode decides.
    #[test]
    fn seccomp_child() {
        if std::env::var_os("MC_RT_SECCOMP_CHILD").is_none() {
            return;
        }
        use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
        let rules = [
            libc_nr::IO_URING_SETUP,
            libc_nr::IO_URING_ENTER,
            libc_nr::IO_URING_REGISTER,
        ]
        .into_iter()
        .map(|nr| (nr, vec![]))
        .collect();
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(1),
            TargetArch::try_from(std::env::consts::ARCH).expect("arch"),
        )
        .expect("filter");
        let program: seccompiler::BpfProgram = filter.try_into().expect("compile");
        seccompiler::apply_filter(&program).expect("apply");
        let auto = choose(IoMode::Auto).expect("auto never fails");
        println!("auto={} reason={}", auto.driver, auto.reason);
        match choose(IoMode::On) {
            Ok(_) => println!("on=started"),
            Err(e) => println!("on=refused {e}"),
        }
    }

    #[test]
    fn seccomp_refusal_falls_back_or_fails_clearly() {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "driver::tests::seccomp_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MC_RT_SECCOMP_CHILD", "1")
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("auto=epoll reason=io_uring_setup failed: Operation not permitted"),
            "{text}"
        );
        assert!(
            text.contains("on=refused io_uring = \"on\" but io_uring is unavailable"),
            "{text}"
        );
        assert!(
            text.contains("seccomp"),
            "the refusal names the likely cause: {text}"
        );
    }

    /// Syscall numbers (the same on x86_64 and aarch64).
    mod libc_nr {
        pub(super) const IO_URING_SETUP: i64 = 425;
        pub(super) const IO_URING_ENTER: i64 = 426;
        pub(super) const IO_URING_REGISTER: i64 = 427;
    }
}
