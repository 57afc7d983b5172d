//! Reading secrets (passwords, passphrases) for `mcctl`: from stdin
//! (`--…-stdin`), from a file's lines (`--…-file FILE`), else the terminal
//! without echo, else one line per secret of piped stdin.
//!
//! Invariant: an empty secret is refused before anything is sent (it can
//! never be right, and a failed login counts toward the lockout); secrets
//! never come from a flag's value, so they stay out of shell history and `ps`.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What is being read, for prompts and errors: `password` / `passphrase`.
#[derive(Clone, Copy)]
pub(crate) struct Kind {
    pub(crate) noun: &'static str,
    /// The flag stem: `--{flag}-stdin`, `--{flag}-file`.
    pub(crate) flag: &'static str,
}

/// Where the secrets come from, as the command's flags said.
pub(crate) struct Source<'a> {
    pub(crate) kind: Kind,
    pub(crate) stdin: bool,
    pub(crate) file: Option<&'a Path>,
}

impl Source<'_> {
    /// Whether prompts go to a terminal (so a confirmation can be asked).
    pub(crate) fn interactive(&self) -> bool {
        !self.stdin && self.file.is_none() && std::io::stdin().is_terminal()
    }

    /// One secret per prompt, each refused if empty.
    pub(crate) fn read(&self, prompts: &[&str]) -> anyhow::Result<Vec<String>> {
        let noun = self.kind.noun;
        let lines: Vec<String> = if let Some(path) = self.file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the {noun} file {}", path.display()))?;
            text.lines()
                .take(prompts.len())
                .map(|l| l.trim_end_matches('\r').to_owned())
                .collect()
        } else if !self.interactive() {
            let mut stdin = std::io::stdin().lock();
            let mut lines = Vec::new();
            for _ in prompts {
                let mut line = String::new();
                stdin
                    .read_line(&mut line)
                    .with_context(|| format!("reading the {noun} from stdin"))?;
                lines.push(line.trim_end_matches(['\r', '\n']).to_owned());
            }
            lines
        } else {
            prompts
                .iter()
                .map(|p| {
                    rpassword::prompt_password(p).with_context(|| format!("reading the {noun}"))
                })
                .collect::<anyhow::Result<_>>()?
        };
        let from = match (self.file, self.stdin) {
            (Some(path), _) => format!("the {noun} file {}", path.display()),
            (None, true) => "stdin".to_owned(),
            (None, false) if std::io::stdin().is_terminal() => "the terminal".to_owned(),
            (None, false) => "stdin (not a terminal)".to_owned(),
        };
        let flag = self.kind.flag;
        let mut out = Vec::with_capacity(prompts.len());
        for (i, prompt) in prompts.iter().enumerate() {
            match lines.get(i) {
                Some(l) if !l.is_empty() => out.push(l.clone()),
                _ => anyhow::bail!(
                    "empty {noun} ({}) read from {from}: nothing was sent; give it on a terminal, with --{flag}-stdin or with --{flag}-file FILE",
                    prompt.trim_end_matches([':', ' '])
                ),
            }
        }
        Ok(out)
    }

    /// One secret, refused if empty.
    pub(crate) fn one(&self, prompt: &str) -> anyhow::Result<String> {
        let mut v = self.read(&[prompt])?;
        v.pop().context("no secret")
    }

    /// A new secret: asked twice on a terminal (they must match), else one line.
    pub(crate) fn new_secret(&self, prompt: &str, again: &str) -> anyhow::Result<String> {
        if !self.interactive() {
            return self.one(prompt);
        }
        let mut v = self.read(&[prompt, again])?.into_iter();
        match (v.next(), v.next()) {
            (Some(a), Some(b)) if a == b => Ok(a),
            _ => anyhow::bail!("the {}s do not match; nothing was sent", self.kind.noun),
        }
    }
}

/// `--passphrase-stdin` / `--passphrase-file FILE` (Metacrypt).
#[derive(clap::Args, Clone, Default)]
pub(crate) struct PassphraseSource {
    /// Read the passphrase from stdin (one line; for scripts and pipes).
    #[arg(long, conflicts_with = "passphrase_file")]
    pub(crate) passphrase_stdin: bool,
    /// Read the passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
}

impl PassphraseSource {
    pub(crate) fn source(&self) -> Source<'_> {
        Source {
            kind: Kind {
                noun: "passphrase",
                flag: "passphrase",
            },
            stdin: self.passphrase_stdin,
            file: self.passphrase_file.as_deref(),
        }
    }
}
