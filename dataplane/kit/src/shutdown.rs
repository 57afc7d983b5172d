//! One shutdown signal that every listener and task of a process watches.

use tokio::sync::watch;

/// Fires shutdown. Dropping it fires too, so a crashed owner cannot leave tasks running.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Watches for shutdown; cheap to clone into every task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger/watch pair.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has been fired (or the trigger dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|down| *down).await;
    }

    pub fn is_down(&self) -> bool {
        *self.0.borrow()
    }
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
