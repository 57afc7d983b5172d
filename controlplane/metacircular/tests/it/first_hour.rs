//! docs/first-hour.md, run from the document itself so it cannot drift.
//!
//! Each `sh` block is introduced by an HTML comment `<!-- first-hour: … -->`
//! (the grammar is in the document's last section): `run` blocks must exit 0
//! and show every `expect "TEXT"`; `background until "TEXT"` blocks run like
//! a terminal of their own; `ctrl-c "CMD"` interrupts one; `skip` blocks are
//! not run. Blocks run in order in a fresh directory with the freshly built
//! `mcd`/`mcctl` first on `PATH`; what a block exports reaches the later ones.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use crate::ports::free_port;

const MARK: &str = "<!-- first-hour:";

#[derive(Debug, PartialEq)]
enum Kind {
    Run,
    Background { until: String },
    CtrlC { of: String },
    Skip,
}

#[derive(Debug)]
struct Step {
    line: usize,
    kind: Kind,
    expects: Vec<String>,
    body: String,
}

/// `word "quoted text"` pairs and bare words of a marker, in order
/// (`\"` inside quotes is a quote).
fn words(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = marker.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {}
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' if chars.peek() == Some(&'"') => s.push(chars.next().unwrap_or('"')),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            c => {
                let mut s = String::from(c);
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '"' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    out
}

/// The steps of `doc`; panics (naming the line) on a `sh` block without a
/// marker, a marker without its block, or a marker it cannot read.
fn parse(doc: &str) -> Vec<Step> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("```sh") {
            panic!(
                "docs/first-hour.md:{}: a sh block without a first-hour marker",
                i + 1
            );
        }
        let Some(rest) = line.strip_prefix(MARK) else {
            i += 1;
            continue;
        };
        let marker = rest.strip_suffix("-->").unwrap_or_else(|| {
            panic!(
                "docs/first-hour.md:{}: marker not closed on its line",
                i + 1
            )
        });
        let w = words(marker);
        let at = i + 1;
        let (kind, mut next) = match w.first().map(String::as_str) {
            Some("run") => (Kind::Run, 1),
            Some("skip") => (Kind::Skip, w.len()),
            Some("background") if w.get(1).map(String::as_str) == Some("until") => (
                Kind::Background {
                    until: w.get(2).cloned().expect("background until \"TEXT\""),
                },
                3,
            ),
            Some("ctrl-c") => (
                Kind::CtrlC {
                    of: w.get(1).cloned().expect("ctrl-c \"CMD\""),
                },
                2,
            ),
            other => panic!("docs/first-hour.md:{at}: unknown marker {other:?}"),
        };
        let mut expects = Vec::new();
        while next < w.len() {
            assert_eq!(w[next], "expect", "docs/first-hour.md:{at}: {marker}");
            expects.push(w.get(next + 1).cloned().expect("expect \"TEXT\""));
            next += 2;
        }
        i += 1;
        let mut body = String::new();
        if !matches!(kind, Kind::CtrlC { .. }) {
            while i < lines.len() && lines[i].trim().is_empty() {
                i += 1;
            }
            assert!(
                lines.get(i).is_some_and(|l| l.trim() == "```sh"),
                "docs/first-hour.md:{at}: the marker must be followed by a ```sh block"
            );
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            i += 1;
        }
        steps.push(Step {
            line: at,
            kind,
            expects,
            body,
        });
    }
    steps
}

/// A command started like a terminal of its own, and its output so far.
struct Background {
    command: String,
    child: Child,
    output: Arc<Mutex<String>>,
}

/// Every process group the walkthrough started, killed when the test ends
/// (also on failure): backgrounded servers included.
struct Groups(Vec<i32>);

impl Drop for Groups {
    fn drop(&mut self) {
        for g in &self.0 {
            if let Some(pid) = rustix::process::Pid::from_raw(*g) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

struct Session {
    cwd: PathBuf,
    state: PathBuf,
    path: String,
    backend_port: String,
    groups: Groups,
}

impl Session {
    fn bash(&self, script: String) -> Command {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(script)
            .current_dir(&self.cwd)
            .env("PATH", &self.path)
            .env("BACKEND_PORT", &self.backend_port)
            .env_remove("MC_ENDPOINTS")
            .env_remove("MC_TOKEN")
            .stdin(Stdio::null())
            .process_group(0);
        c
    }

    /// `set -euo pipefail`, the exports of earlier blocks, the block, then
    /// its exports saved for the next.
    fn run(&mut self, step: &Step) {
        let state = self.state.display();
        let script = format!(
            "set -euo pipefail\nsource '{state}'\n{}\nexport -p > '{state}'\n",
            step.body
        );
        let child = self
            .bash(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash");
        self.groups.0.push(child.id() as i32);
        let out = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "docs/first-hour.md:{}: the block failed ({}):\n{}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            step.line,
            out.status,
            step.body
        );
        for e in &step.expects {
            assert!(
                stdout.contains(e.as_str()),
                "docs/first-hour.md:{}: the output lacks `{e}`:\n{}\n--- stdout\n{stdout}--- stderr\n{stderr}",
                step.line,
                step.body
            );
        }
    }

    fn background(&mut self, step: &Step, until: &str) -> Background {
        let script = format!(
            "exec 2>&1\nsource '{}'\n{}",
            self.state.display(),
            step.body
        );
        let mut child = self
            .bash(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("bash");
        self.groups.0.push(child.id() as i32);
        let stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log = output.clone();
        let until = until.to_owned();
        // Keeps draining after readiness, so the command never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(&until) {
                    let _ = tx.send(());
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        // A hang guard, not a timing assertion.
        if rx.recv_timeout(Duration::from_secs(180)).is_err() {
            panic!(
                "docs/first-hour.md:{}: `{}` never printed the awaited text:\n{}",
                step.line,
                step.body.trim(),
                output.lock().map(|l| l.clone()).unwrap_or_default()
            );
        }
        Background {
            command: step.body.trim().to_owned(),
            child,
            output,
        }
    }
}

fn interrupt(step: &Step, bg: &mut Background) {
    let pid = rustix::process::Pid::from_raw(bg.child.id() as i32).expect("pid");
    rustix::process::kill_process_group(pid, rustix::process::Signal::INT).expect("SIGINT");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = bg.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "docs/first-hour.md:{}: `{}` did not stop on Ctrl-C",
            step.line,
            bg.command
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "docs/first-hour.md:{}: `{}` exited with {status} on Ctrl-C:\n{}",
        step.line,
        bg.command,
        bg.output.lock().map(|l| l.clone()).unwrap_or_default()
    );
}

fn document() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/first-hour.md");
    std::fs::read_to_string(&path).expect("docs/first-hour.md")
}

#[test]
fn markers_are_read_as_documented() {
    let doc = "x\n<!-- first-hour: run expect \"a \\\"b\\\"\" expect \"c\" -->\n```sh\necho 1\necho 2\n```\n\
               <!-- first-hour: background until \"ready\" -->\n\n```sh\nmcd dev\n```\n\
               <!-- first-hour: ctrl-c \"mcd dev\" -->\n<!-- first-hour: skip (why) -->\n```sh\nno\n```\n";
    let steps = parse(doc);
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[0].kind, Kind::Run);
    assert_eq!(steps[0].expects, vec!["a \"b\"".to_owned(), "c".to_owned()]);
    assert_eq!(steps[0].body, "echo 1\necho 2\n");
    assert_eq!(
        steps[1].kind,
        Kind::Background {
            until: "ready".to_owned()
        }
    );
    assert_eq!(steps[1].body, "mcd dev\n");
    assert_eq!(
        steps[2].kind,
        Kind::CtrlC {
            of: "mcd dev".to_owned()
        }
    );
    assert_eq!(steps[3].kind, Kind::Skip);
    let unmarked = std::panic::catch_unwind(|| parse("```sh\nls\n```\n"));
    assert!(unmarked.is_err(), "an unmarked sh block is refused");
}

/// Issue 19, the first hour: every step of docs/first-hour.md, as written.
#[test]
fn first_hour_walkthrough_runs_as_written() {
    let steps = parse(&document());
    let count = |f: fn(&Kind) -> bool| steps.iter().filter(|s| f(&s.kind)).count();
    // The walkthrough keeps its shape: a platform started twice and stopped
    // once between, and the steps in between.
    assert!(count(|k| matches!(k, Kind::Run)) >= 10, "{steps:#?}");
    assert_eq!(count(|k| matches!(k, Kind::Background { .. })), 2);
    assert_eq!(count(|k| matches!(k, Kind::CtrlC { .. })), 1);

    let cwd = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let state = scratch.path().join("exports.sh");
    std::fs::write(&state, "").expect("state");
    let bin = crate::support::mcd().parent().expect("bin dir").to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut session = Session {
        cwd: cwd.path().to_owned(),
        state,
        path,
        backend_port: free_port().to_string(),
        groups: Groups(Vec::new()),
    };
    let mut running: Vec<Background> = Vec::new();
    for step in &steps {
        match &step.kind {
            Kind::Skip => {}
            Kind::Run => session.run(step),
            Kind::Background { until } => {
                let bg = session.background(step, until);
                running.push(bg);
            }
            Kind::CtrlC { of } => {
                let at = running
                    .iter()
                    .rposition(|b| &b.command == of)
                    .unwrap_or_else(|| {
                        panic!("docs/first-hour.md:{}: no `{of}` running", step.line)
                    });
                let mut bg = running.remove(at);
                interrupt(step, &mut bg);
            }
        }
    }
    // The last `mcd dev` stops cleanly too.
    for mut bg in running {
        let last = Step {
            line: 0,
            kind: Kind::CtrlC {
                of: bg.command.clone(),
            },
            expects: Vec::new(),
            body: String::new(),
        };
        interrupt(&last, &mut bg);
    }
}
