//! Issue 19 defect 5 and the rest of 11: every `mcctl` command honours
//! `--json` (a sweep over the command tree `mcctl --help` reports, so a new
//! command without an entry here fails the test), and text output shows
//! times as RFC 3339 UTC and policy rules whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{Dev, mcctl, run_mcctl};

/// Every leaf command of `mcctl`, from its own `--help` (`help` excluded).
fn leaves(prefix: &mut Vec<String>, out: &mut BTreeSet<String>) {
    let help = std::process::Command::new(mcctl())
        .args(prefix.iter())
        .arg("--help")
        .output()
        .expect("mcctl --help");
    assert!(help.status.success(), "{prefix:?} --help");
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let Some((_, commands)) = text.split_once("\nCommands:\n") else {
        out.insert(prefix.join(" "));
        return;
    };
    for line in commands.lines().take_while(|l| !l.is_empty()) {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name != "help" {
            prefix.push(name.to_owned());
            leaves(prefix, out);
            prefix.pop();
        }
    }
}

/// What a step must do; either way stdout must obey `--json`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Want {
    Ok,
    Refused,
    /// Depends on what this dev platform can do (e.g. trust for a cert).
    Either,
}

struct Step {
    args: &'static str,
    stdin: &'static str,
    want: Want,
    /// Save `pointer` of the JSON answer as `{name}` for later steps.
    capture: Option<(&'static str, &'static str)>,
}

const fn step(args: &'static str, want: Want) -> Step {
    Step {
        args,
        stdin: "",
        want,
        capture: None,
    }
}

const fn fed(args: &'static str, stdin: &'static str, want: Want) -> Step {
    Step {
        args,
        stdin,
        want,
        capture: None,
    }
}

const fn keep(args: &'static str, name: &'static str, pointer: &'static str) -> Step {
    Step {
        args,
        stdin: "",
        want: Want::Ok,
        capture: Some((name, pointer)),
    }
}

const NEW_PASSWORD: &str = "a new admin password 19";

/// One run of every command, in an order where each has what it needs.
/// `{pw}` is the bootstrap password, `{dir}`/`{data}` the test's and the
/// platform's directories, `{x}` what an earlier step captured.
const STEPS: &[Step] = &[
    step("endpoints", Want::Ok),
    step("status", Want::Ok),
    fed(
        "login --username admin --password-stdin",
        "{pw}\n",
        Want::Ok,
    ),
    step("whoami", Want::Ok),
    // MCP: no node registers on a dev platform, so lists are empty and
    // service commands are refused.
    step("nodes", Want::Ok),
    step("node list", Want::Ok),
    step("node status nosuch", Want::Refused),
    step("sync {dir}/nosuch-dir --dry-run", Want::Refused),
    step("ps", Want::Ok),
    step("status nosuch", Want::Refused),
    step("deploy {dir}/nosuch.toml", Want::Refused),
    step("undeploy nosuch", Want::Refused),
    step("stop nosuch", Want::Refused),
    step("start nosuch", Want::Refused),
    step("restart nosuch", Want::Refused),
    step("logs nosuch", Want::Refused),
    step("snapshots", Want::Ok),
    step("snapshot nosuch", Want::Refused),
    step("restore nosuch-1-00000000", Want::Refused),
    step("migrate nosuch --to nowhere", Want::Refused),
    step("audit", Want::Ok),
    step("proxy status --node nowhere", Want::Refused),
    step("iam accounts list", Want::Ok),
    Step {
        args: "iam accounts create sweep-user --role user --tag env:test --password-stdin",
        stdin: "a sweep user password 19\n",
        want: Want::Ok,
        capture: Some(("account", "/id")),
    },
    step("iam accounts get {account}", Want::Ok),
    step("iam accounts disable sweep-user", Want::Ok),
    step("iam accounts enable sweep-user", Want::Ok),
    step("iam accounts roles sweep-user user guest", Want::Ok),
    step("iam accounts tags sweep-user env:prod", Want::Ok),
    step("iam accounts create sweep-bot --system", Want::Ok),
    step(
        "iam tokens issue sweep-bot --ttl 1d --description sweep",
        Want::Ok,
    ),
    keep("iam tokens list --account sweep-bot", "jti", "/0/jti"),
    step("iam tokens revoke {jti}", Want::Ok),
    keep(
        "iam policy add --effect deny --priority 900 --description sweep --service sweep-svc",
        "rule",
        "/id",
    ),
    step("iam policy list", Want::Ok),
    step(
        "iam policy explain sweep-user --service sweep-svc",
        Want::Ok,
    ),
    step("iam policy remove {rule}", Want::Ok),
    step("iam audit --limit 5", Want::Ok),
    step("iam rotate-key", Want::Ok),
    step(
        "iam sso create sweep-app --redirect-uri https://app.test/cb --tag env:test",
        Want::Ok,
    ),
    step("iam sso list", Want::Ok),
    step("iam sso update sweep-app --disabled", Want::Ok),
    step("iam sso delete sweep-app", Want::Ok),
    step("iam passkeys list", Want::Ok),
    step("iam passkeys remove no-such-passkey", Want::Refused),
    step("iam accounts delete sweep-user", Want::Ok),
    step("crypt status", Want::Ok),
    fed(
        "crypt init --passphrase-stdin",
        "already initialised 19\n",
        Want::Refused,
    ),
    step("crypt seal", Want::Ok),
    step(
        "crypt unseal --passphrase-file {data}/metacrypt/dev-passphrase",
        Want::Ok,
    ),
    step("crypt rotate-mek", Want::Ok),
    step(
        "crypt rekey --passphrase-file {data}/metacrypt/dev-passphrase",
        Want::Ok,
    ),
    step("crypt slots list", Want::Ok),
    // mcd dev sets no auto_unseal_key_file: refused, nothing written.
    fed(
        "crypt slots add-keyfile --passphrase-stdin",
        "not the passphrase\n",
        Want::Refused,
    ),
    // Slot changes need the current passphrase: a wrong one changes nothing.
    fed(
        "crypt slots change-passphrase --passphrase-stdin",
        "not the passphrase\na new passphrase 19\n",
        Want::Refused,
    ),
    fed(
        "crypt slots reshare --shares 3 --threshold 2 --passphrase-stdin",
        "not the passphrase\n",
        Want::Refused,
    ),
    fed(
        "crypt slots remove no-such-slot --passphrase-stdin",
        "not the passphrase\n",
        Want::Refused,
    ),
    step("crypt jobs", Want::Ok),
    step("crypt audit --action barrier. --limit 5", Want::Ok),
    step("crypt mounts list", Want::Ok),
    step("crypt mounts create sweep-kv --type kv", Want::Ok),
    step("crypt mounts get sweep-kv", Want::Ok),
    step("crypt kv put sweep-kv app/db user=a pass=b", Want::Ok),
    step("crypt kv patch sweep-kv app/db pass=c", Want::Ok),
    step("crypt kv get sweep-kv app/db", Want::Ok),
    step("crypt kv get sweep-kv no/such/path", Want::Refused),
    step("crypt kv list sweep-kv", Want::Ok),
    step("crypt kv delete sweep-kv app/db", Want::Ok),
    step("crypt kv undelete sweep-kv app/db --versions 2", Want::Ok),
    step("crypt kv destroy sweep-kv app/db --versions 1", Want::Ok),
    step("crypt kv metadata sweep-kv app/db", Want::Ok),
    step(
        "crypt kv metadata sweep-kv app/db --delete-version-after 1h",
        Want::Ok,
    ),
    step("crypt mounts rotate-dek sweep-kv --wait", Want::Ok),
    step("crypt kv get sweep-kv app/db", Want::Ok),
    step("crypt policy list", Want::Ok),
    step(
        "crypt policy create --id sweep-rule --role ops --path sweep-kv/* --capability read",
        Want::Ok,
    ),
    step("crypt policy get sweep-rule", Want::Ok),
    step(
        "crypt policy update sweep-rule --description swept",
        Want::Ok,
    ),
    step("crypt policy explain sweep-kv/data/app/db read", Want::Ok),
    step("crypt policy delete sweep-rule", Want::Ok),
    step("crypt mounts delete sweep-kv", Want::Ok),
    step("crypt mounts create sweep-transit --type transit", Want::Ok),
    step("crypt keys create sweep-transit k1", Want::Ok),
    step(
        "crypt keys create sweep-transit s1 --type ed25519",
        Want::Ok,
    ),
    step("crypt keys list sweep-transit", Want::Ok),
    step("crypt keys get sweep-transit k1", Want::Ok),
    step("crypt keys get sweep-transit nokey", Want::Refused),
    step("crypt keys rotate sweep-transit k1", Want::Ok),
    step(
        "crypt keys config sweep-transit k1 --min-encryption-version 2 --deletion-allowed true",
        Want::Ok,
    ),
    step(
        "crypt keys trim sweep-transit k1 --min-available-version 1",
        Want::Ok,
    ),
    Step {
        args: "crypt encrypt sweep-transit k1",
        stdin: "swept",
        want: Want::Ok,
        capture: Some(("ct", "/ciphertext")),
    },
    step("crypt decrypt sweep-transit k1 {ct}", Want::Ok),
    step(
        "crypt decrypt sweep-transit k1 vault:v9:AAAA",
        Want::Refused,
    ),
    Step {
        args: "crypt sign sweep-transit s1",
        stdin: "swept",
        want: Want::Ok,
        capture: Some(("sig", "/signature")),
    },
    fed("crypt verify sweep-transit s1 {sig}", "swept", Want::Ok),
    fed(
        "crypt verify sweep-transit s1 {sig}",
        "changed",
        Want::Refused,
    ),
    step("crypt keys delete sweep-transit k1", Want::Ok),
    step("crypt mounts delete sweep-transit", Want::Ok),
    step("crypt mounts create sweep-user --type user", Want::Ok),
    step("crypt user key --mount sweep-user", Want::Refused),
    step("crypt user init --mount sweep-user", Want::Ok),
    step("crypt user rotate --mount sweep-user", Want::Ok),
    step("crypt user key --mount sweep-user", Want::Ok),
    step("crypt user public admin --mount sweep-user", Want::Ok),
    Step {
        args: "crypt user encrypt --to admin --mount sweep-user",
        stdin: "swept",
        want: Want::Ok,
        capture: Some(("uct", "/ciphertext")),
    },
    step("crypt user decrypt {uct} --mount sweep-user", Want::Ok),
    step(
        "crypt user decrypt mcuser:v1:AAAA --mount sweep-user",
        Want::Refused,
    ),
    step("crypt mounts delete sweep-user", Want::Ok),
    step("crypt mounts create sweep-pki --type pki", Want::Ok),
    step(
        "crypt pki root-generate sweep-pki --common-name Sweep-Root",
        Want::Ok,
    ),
    step(
        "crypt pki root-import sweep-pki --cert-file {data}/metacrypt/dev-passphrase --key-file {data}/metacrypt/dev-passphrase",
        Want::Refused,
    ),
    step(
        "crypt pki issuer-create sweep-pki svc --common-name Sweep-Services --ttl 8760h",
        Want::Ok,
    ),
    step("crypt pki issuers sweep-pki", Want::Ok),
    step("crypt pki issuer sweep-pki svc", Want::Ok),
    step("crypt pki issuer-rotate sweep-pki svc", Want::Ok),
    step(
        "crypt pki role-put sweep-pki web --issuer svc --allowed-domain sweep.test --allow-subdomains",
        Want::Ok,
    ),
    step("crypt pki roles sweep-pki", Want::Ok),
    step("crypt pki role sweep-pki web", Want::Ok),
    keep(
        "crypt pki issue sweep-pki web --common-name a.sweep.test",
        "serial",
        "/serial",
    ),
    step(
        "crypt pki issue sweep-pki web --common-name a.other.test",
        Want::Refused,
    ),
    step(
        "crypt pki sign sweep-pki web --csr-file {data}/metacrypt/dev-passphrase",
        Want::Refused,
    ),
    step("crypt pki certs sweep-pki", Want::Ok),
    step("crypt pki cert sweep-pki {serial}", Want::Ok),
    step("crypt pki renew sweep-pki {serial}", Want::Ok),
    step("crypt pki revoke sweep-pki {serial}", Want::Ok),
    step("crypt pki crl-rotate sweep-pki", Want::Ok),
    step("crypt pki tidy sweep-pki", Want::Ok),
    // The mount serves no role over ACME: refused, in JSON.
    step("crypt pki acme-eab sweep-pki web", Want::Refused),
    step("crypt pki role-delete sweep-pki web", Want::Ok),
    step("crypt mounts delete sweep-pki", Want::Ok),
    step("crypt mounts create sweep-ssh --type ssh", Want::Ok),
    step("crypt ssh ca-create sweep-ssh", Want::Ok),
    // One CA key for the mount's life: a second one is refused.
    step("crypt ssh ca-create sweep-ssh", Want::Refused),
    step("crypt ssh ca sweep-ssh", Want::Ok),
    step(
        "crypt ssh profile-put sweep-ssh users --allowed-principal ops --ttl 1h",
        Want::Ok,
    ),
    step("crypt ssh profiles sweep-ssh", Want::Ok),
    step("crypt ssh profile sweep-ssh users", Want::Ok),
    // Not an OpenSSH public key: refused, in JSON.
    step(
        "crypt ssh sign sweep-ssh users --public-key-file {data}/metacrypt/dev-passphrase --principal ops",
        Want::Refused,
    ),
    step("crypt ssh issued sweep-ssh", Want::Ok),
    step("crypt ssh cert sweep-ssh 1", Want::Refused),
    step("crypt ssh revoke sweep-ssh --key-id gone", Want::Ok),
    step("crypt ssh tidy sweep-ssh", Want::Ok),
    step("crypt ssh profile-delete sweep-ssh users", Want::Ok),
    step("crypt mounts delete sweep-ssh", Want::Ok),
    step("dev cert sweep-dev.test --out {dir}", Want::Ok),
    step("registry gc start --dry-run", Want::Ok),
    keep("registry gc start", "gcrun", "/id"),
    step("registry gc show {gcrun}", Want::Ok),
    step("registry gc show gc-no-such-run", Want::Refused),
    step("registry gc cancel {gcrun}", Want::Refused),
    step("registry gc cancel gc-no-such-run", Want::Refused),
    step("registry gc list", Want::Ok),
    step("registry status", Want::Ok),
    step("registry fsck --verify-content", Want::Ok),
    step(
        "registry retention set sweep-ret --repo apps/** --keep-last 5 --keep-tag v* --untagged-older-than 7d",
        Want::Ok,
    ),
    step(
        "registry retention set sweep-bad --repo apps/** --untagged-older-than soon",
        Want::Refused,
    ),
    step("registry retention list", Want::Ok),
    step("registry retention run --dry-run", Want::Ok),
    step("registry retention run --repo apps/web", Want::Ok),
    step("registry retention delete sweep-ret", Want::Ok),
    step("proxy status", Want::Ok),
    step("proxy listeners list", Want::Ok),
    step(
        "proxy listeners add sweep-bad --address 256.0.0.1:80",
        Want::Refused,
    ),
    step("proxy listeners remove no-such-listener", Want::Refused),
    step(
        "proxy routes add sweep.test --backend 127.0.0.1:9",
        Want::Ok,
    ),
    step("proxy routes import {dir}/table.json", Want::Ok),
    step("proxy routes list", Want::Ok),
    step("proxy routes remove sweep2.test", Want::Ok),
    step("proxy certs list", Want::Ok),
    step(
        "proxy certs put sweep --chain {dir}/chain.pem --key {dir}/key.pem",
        Want::Either,
    ),
    step("proxy certs remove sweep", Want::Either),
    // `mcd dev` has no [proxy.metacrypt]: managed certificates are refused.
    step(
        "proxy certs managed add sweep.test --dns sweep.test --mount pki --role proxy",
        Want::Refused,
    ),
    step("proxy certs managed renew no-such-cert", Want::Refused),
    step("proxy certs managed remove no-such-cert", Want::Refused),
    step("proxy policies list", Want::Ok),
    step(
        "proxy policies add sweep.test --block-user-agent BadBot",
        Want::Either,
    ),
    step("proxy policies remove no-such-policy", Want::Refused),
    step("proxy firewall add --ip 192.0.2.7", Want::Ok),
    step("proxy firewall list", Want::Ok),
    step("proxy firewall remove --ip 192.0.2.7", Want::Ok),
    step("proxy firewall limits --rate 100 --burst 200", Want::Ok),
    step("proxy geoip-reload", Want::Refused),
    step("proxy reload", Want::Ok),
    step("proxy routes remove sweep.test", Want::Ok),
    step("registry repos list", Want::Ok),
    step(
        "registry repos set sweep/app --public --quota 1GiB",
        Want::Ok,
    ),
    step("registry repos show sweep/app", Want::Refused),
    step("registry tags list sweep/app", Want::Refused),
    step("registry manifests show sweep/app latest", Want::Refused),
    step(
        "registry manifests show sweep/app sha256:bad",
        Want::Refused,
    ),
    step("registry repos delete sweep/app", Want::Refused),
    step("registry quota set sweep/app 2GiB", Want::Ok),
    step("registry quota show sweep/app", Want::Ok),
    step("registry quota set Bad/Name 1", Want::Refused),
    step(
        "registry namespaces set sweep --private --quota 10GiB",
        Want::Ok,
    ),
    step("registry namespaces show sweep", Want::Ok),
    step("registry policy list", Want::Ok),
    step(
        "registry policy create --id sweep-rule --role ops --repo sweep/** --action push",
        Want::Ok,
    ),
    step("registry policy get sweep-rule", Want::Ok),
    step(
        "registry policy update sweep-rule --description swept",
        Want::Ok,
    ),
    step(
        "registry policy explain --repo sweep/app --action push --role ops",
        Want::Ok,
    ),
    step("registry policy delete sweep-rule", Want::Ok),
    step(
        "registry policy create --repo Bad --action push",
        Want::Refused,
    ),
    step("registry audit --action registry.policy", Want::Ok),
    step("dns status", Want::Ok),
    step("dns zones create sweep.test --ns ns1.sweep.test", Want::Ok),
    step("dns zones list", Want::Ok),
    step("dns records add sweep.test www A 192.0.2.10", Want::Ok),
    step("dns records list sweep.test", Want::Ok),
    step("dns records remove sweep.test www A", Want::Ok),
    step("dns flush", Want::Ok),
    step("dns tsig add sweep-key --zone sweep.test", Want::Ok),
    step("dns tsig list", Want::Ok),
    step(
        "dns tsig add bad-key --zone sweep.test --secret c2hvcnQ=",
        Want::Refused,
    ),
    step("dns tsig remove sweep-key", Want::Ok),
    step("dns zones delete sweep.test", Want::Ok),
    fed("iam password --password-stdin", "{pw}\n{new}\n", Want::Ok),
    // A password change revokes the sessions: log in again to log out.
    fed(
        "login --username admin --password-stdin",
        "{new}\n",
        Want::Ok,
    ),
    step("logout", Want::Ok),
];

fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut s = text.to_owned();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    assert!(!s.contains('{'), "unfilled placeholder in {s}");
    s
}

/// The leaf a step runs: the longest prefix of its words that is a leaf.
fn leaf_of(args: &str, leaves: &BTreeSet<String>) -> Option<String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    (1..=words.len().min(4))
        .rev()
        .map(|n| words[..n].join(" "))
        .find(|p| leaves.contains(p))
}

fn dev_platform(dir: &Path) -> (Dev, PathBuf, String) {
    let dev = Dev::start(dir, Some(&dir.join("mc")));
    let endpoints = dev.data_dir.join("endpoints.json");
    let pw = dev.endpoints["bootstrap"]["password"]
        .as_str()
        .expect("bootstrap password")
        .to_owned();
    (dev, endpoints, pw)
}

/// Defect 5: `--json` was ignored by `whoami`, `endpoints` and every `iam`
/// command. Every leaf of the command tree runs here with `--json`: on
/// success stdout is exactly one JSON document, on a refusal stdout is empty
/// and stderr one `mcctl:` line. A command added to mcctl without a step
/// here fails the coverage check.
#[test]
fn mcctl_every_command_honours_json() {
    let mut tree = BTreeSet::new();
    leaves(&mut Vec::new(), &mut tree);
    assert!(tree.len() > 40, "the walk found too few commands: {tree:?}");
    let covered: BTreeSet<String> = STEPS
        .iter()
        .filter_map(|s| leaf_of(s.args, &tree))
        .collect();
    let missing: Vec<_> = tree.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "commands with no --json step in cli_json.rs: {missing:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (dev, endpoints, pw) = dev_platform(dir.path());
    std::fs::write(
        dir.path().join("table.json"),
        r#"[{"hostname": "sweep2.test", "backends": ["127.0.0.1:9"]}]"#,
    )
    .expect("table");
    // A self-signed pair: whether it is accepted depends on the dev CA setup.
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=sweep.test"])
        .args(["-addext", "subjectAltName=DNS:sweep.test"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("chain.pem"))
        .output()
        .expect("openssl is installed (scripts/test installs it)");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let mut vars = BTreeMap::from([
        ("pw".to_owned(), pw),
        ("new".to_owned(), NEW_PASSWORD.to_owned()),
        ("dir".to_owned(), dir.path().display().to_string()),
        ("data".to_owned(), dev.data_dir.display().to_string()),
    ]);
    for s in STEPS {
        let args = fill(s.args, &vars);
        let stdin = fill(s.stdin, &vars);
        let mut argv: Vec<&str> = vec!["--json"];
        argv.extend(args.split_whitespace());
        let out: Output = run_mcctl(&endpoints, &argv, &stdin);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(!stderr.contains("panicked"), "{args}: {stderr}");
        if out.status.success() {
            assert_ne!(s.want, Want::Refused, "{args} must be refused: {stdout}");
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!("mcctl --json {args}: not one JSON document ({e}):\n{stdout}")
            });
            if let Some((name, pointer)) = s.capture {
                let got = v
                    .pointer(pointer)
                    .and_then(|x| x.as_str())
                    .unwrap_or_else(|| panic!("{args}: no {pointer} in {v}"));
                vars.insert(name.to_owned(), got.to_owned());
            }
        } else {
            assert_ne!(s.want, Want::Ok, "mcctl --json {args} failed: {stderr}");
            assert!(stdout.is_empty(), "{args}: stdout on failure: {stdout}");
            assert!(stderr.starts_with("mcctl: "), "{args}: {stderr}");
        }
    }
    drop(dev);
}

/// Is `s` an RFC 3339 UTC time as mcctl prints it (`2026-12-07T00:25:54Z`)?
fn is_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// A word that is a plausible Unix time (what tables used to print).
fn has_epoch(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|w| w.len() == 10 && w.starts_with('1'))
}

/// Defect 11 and the second half of 5: `whoami`, `login`, `iam audit`,
/// `iam tokens` printed expiry and audit times as raw Unix epochs, and
/// `iam policy list` did not show what a rule matches. Text shows RFC 3339
/// UTC (JSON keeps the epochs), and the policy table shows the whole rule.
#[test]
fn mcctl_text_shows_utc_times_and_whole_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_dev, endpoints, pw) = dev_platform(dir.path());
    let ok = |args: &[&str], stdin: &str| -> String {
        let out = run_mcctl(&endpoints, args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let login = ok(
        &["login", "--username", "admin", "--password-stdin"],
        &format!("{pw}\n"),
    );
    assert!(!has_epoch(&login), "{login}");
    let at = login
        .trim()
        .rsplit_once("(expires at ")
        .map(|(_, t)| t.trim_end_matches(')'))
        .unwrap_or_default();
    assert!(is_utc(at), "{login}");

    let who = ok(&["whoami"], "");
    let exp = who.trim().rsplit_once("expires_at=").map(|(_, t)| t);
    assert!(exp.is_some_and(is_utc), "{who}");
    let who_json: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "whoami"], "")).expect("json");
    assert!(who_json["expires_at_unix"].is_i64(), "{who_json}");

    // The audit log: the second column of every line is a time.
    let audit = ok(&["iam", "audit", "--limit", "5"], "");
    assert!(!audit.trim().is_empty());
    for line in audit.lines() {
        let at = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(is_utc(at), "{line}");
    }

    ok(&["iam", "accounts", "create", "bot", "--system"], "");
    ok(&["iam", "tokens", "issue", "bot", "--ttl", "1d"], "");
    let tokens = ok(&["iam", "tokens", "list", "--account", "bot"], "");
    let row = tokens.lines().nth(1).unwrap_or_default();
    assert!(
        row.split_whitespace().nth(2).is_some_and(is_utc) && !has_epoch(&tokens),
        "{tokens}"
    );

    // A rule shows what it matches, not just its description.
    ok(
        &[
            "iam",
            "policy",
            "add",
            "--effect",
            "deny",
            "--priority",
            "50",
            "--role",
            "guest",
            "--service",
            "mcr",
            "--tag",
            "env:prod",
            "--action",
            "auth:login",
        ],
        "",
    );
    let rules = ok(&["iam", "policy", "list"], "");
    let line = rules
        .lines()
        .find(|l| l.contains(" deny ") && l.contains("guest"))
        .unwrap_or_else(|| panic!("the rule's match is not shown: {rules}"));
    for part in [
        "role=guest",
        "service=mcr",
        "tag=env:prod",
        "action=auth:login",
    ] {
        assert!(line.contains(part), "{part} missing: {rules}");
    }
    assert!(
        rules.lines().next().is_some_and(|h| h.contains("MATCHES")),
        "{rules}"
    );
}
