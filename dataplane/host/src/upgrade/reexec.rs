//! SIGUSR2: start a successor of this process (`--upgrade`), and telling
//! systemd which process is the service's main one.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// On each SIGUSR2, spawns `exe` with this process's arguments plus
/// `--upgrade` (without `--exit-with-stdin`: the successor outlives this
/// process and its supervisor pipe). `exe` is resolved at start, so a binary
/// replaced at that path is what runs. The signal's time goes to `signalled`
/// (the start of the measured handover).
pub(crate) fn watch_sigusr2(exe: PathBuf, args: Vec<OsString>, signalled: Arc<AtomicU64>) {
    let mut sig = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGUSR2; upgrades need `mcd dataplane --upgrade`");
            return;
        }
    };
    let args: Vec<OsString> = args
        .into_iter()
        .filter(|a| a != "--upgrade" && a != "--exit-with-stdin")
        .collect();
    tokio::spawn(async move {
        while sig.recv().await.is_some() {
            signalled.store(super::donor::unix_ms(), Ordering::SeqCst);
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(&args)
                .arg("--upgrade")
                .stdin(std::process::Stdio::null());
            match cmd.spawn() {
                Ok(mut child) => {
                    let pid = child.id();
                    tracing::info!(successor = pid, exe = %exe.display(), "SIGUSR2: started a successor");
                    // Reap it if it fails while this process still runs.
                    let _ = std::thread::Builder::new()
                        .name("upgrade-child".into())
                        .spawn(move || match child.wait() {
                            Ok(status) if !status.success() => {
                                tracing::error!(successor = pid, %status, "the successor failed; still serving");
                            }
                            _ => {}
                        });
                }
                Err(e) => {
                    tracing::error!(exe = %exe.display(), error = %e, "SIGUSR2: cannot start a successor; still serving");
                }
            }
        }
    });
}

/// Tells systemd (when `NOTIFY_SOCKET` is set) that this process is ready and
/// is the service's main process. A successor sends this after its takeover,
/// so `Type=notify` with `NotifyAccess=all` follows the upgrade.
pub(crate) fn notify_systemd() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let msg = format!("MAINPID={}\nREADY=1\n", std::process::id());
    let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg.as_bytes(), &addr)
        } else {
            sock.send_to(msg.as_bytes(), PathBuf::from(&path))
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
