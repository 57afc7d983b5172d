use proptest::prelude::*;

use super::*;

const WEB: &str = r#"
name = "web"
[[components]]
name = "app"
image = "mcr.example.net/apps/web:1.2.3"
command = ["/bin/busybox", "httpd", "-f", "-p", "$PORT"]
env = { GREETING = "hello" }
volumes = ["data:/data", "/srv/web/conf:/etc/web:ro"]
health = { http = "/", timeout = 10 }
[[components.routes]]
name = "http"
mode = "l7"
hostname = "web.svc.example.net"
"#;

fn field(text: &str) -> String {
    match ServiceDef::from_toml(text) {
        Err(SpecError::Invalid(i)) => i.field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_definition_parses_and_round_trips_through_the_wire() {
    let def = ServiceDef::from_toml(WEB).expect("valid");
    assert_eq!(def.components[0].routes[0].mode, Mode::L7);
    assert_eq!(def.containers(), 1);
    let back = ServiceDef::from_proto(def.to_proto()).expect("valid");
    assert_eq!(back, def);
    let json = serde_json::to_string(&def).expect("json");
    assert_eq!(
        serde_json::from_str::<ServiceDef>(&json).expect("json"),
        def
    );
}

#[test]
fn refusals_name_the_field() {
    let latest = WEB.replace(":1.2.3", ":latest");
    assert_eq!(field(&latest), "components[0].image");
    let untagged = WEB.replace(":1.2.3", "");
    assert_eq!(field(&untagged), "components[0].image");
    let digest = WEB.replace(":1.2.3", "@sha256:abcd");
    assert!(ServiceDef::from_toml(&digest).is_ok());
    assert_eq!(field(&WEB.replace("\"web\"", "\"Web\"")), "name");
    assert_eq!(
        field(&WEB.replace("data:/data", "../x:/data")),
        "components[0].volumes[0]"
    );
    assert_eq!(
        field(&WEB.replace("/srv/web/conf", "/etc")),
        "components[0].volumes[1]"
    );
    assert_eq!(
        field(&WEB.replace("web.svc.example.net", "Web_svc")),
        "components[0].routes[0].hostname"
    );
    assert_eq!(
        field(&WEB.replace("http = \"/\"", "http = \"/\", tcp = true")),
        "components[0].health"
    );
    assert_eq!(
        field(&WEB.replace("GREETING", "1X")),
        "components[0].env.1X"
    );
    let two = format!("{WEB}\n[[components]]\nname = \"app\"\nimage = \"x:1\"\n");
    assert_eq!(field(&two), "components[1].name");
    assert_eq!(field("name = \"web\"\ncomponents = []\n"), "components");
}

#[test]
fn syntax_and_unknown_keys_are_refused_with_their_place() {
    for bad in [
        "name = \"web\"\n[[components]\n",
        &WEB.replace("name = \"app\"", "name = \"app\"\nimgae = \"x:1\""),
        &WEB.replace("mode = \"l7\"", "mode = \"l5\""),
    ] {
        match ServiceDef::from_toml(bad) {
            Err(SpecError::Syntax(m)) => assert!(m.contains("line"), "{m}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn an_out_of_range_port_from_the_wire_is_refused() {
    let mut spec = ServiceDef::from_toml(WEB).expect("valid").to_proto();
    spec.components[0].routes[0].container_port = 70_000;
    let e = ServiceDef::from_proto(spec).expect_err("refused");
    assert_eq!(e.field, "components[0].routes[0].port");
}

proptest! {
    /// Any tag but `latest` is accepted; `latest` and a missing tag never are.
    #[test]
    fn only_pinned_images_pass(repo in "[a-z]{1,8}(/[a-z]{1,8}){0,2}", tag in "[a-z0-9.]{1,10}") {
        let image = format!("{repo}:{tag}");
        prop_assert_eq!(check_image("i", &image).is_ok(), tag != "latest");
        prop_assert!(check_image("i", &repo).is_err());
    }

    /// Arbitrary text never panics the parser.
    #[test]
    fn any_text_gives_a_definition_or_an_error(text in ".{0,400}") {
        let _ = ServiceDef::from_toml(&text);
    }
}

#[test]
fn a_snapshot_schedule_round_trips_and_is_bounded() {
    let text = format!("{WEB}[snapshots]\nevery = \"6h\"\nkeep = 3\n");
    let def = ServiceDef::from_toml(&text).expect("valid");
    let s = def.snapshots.as_ref().expect("schedule");
    assert_eq!((s.every.get().as_secs(), s.keep), (21_600, 3));
    assert_eq!(
        def.to_proto().snapshots.map(|s| s.interval_seconds),
        Some(21_600)
    );
    assert_eq!(ServiceDef::from_proto(def.to_proto()).expect("valid"), def);
    for (bad, f) in [
        ("every = \"0s\"", "snapshots.every"),
        ("every = \"1500ms\"", "snapshots.every"),
        ("every = \"31d\"", "snapshots.every"),
        ("every = \"1h\"\nkeep = 1001", "snapshots.keep"),
    ] {
        assert_eq!(field(&format!("{WEB}[snapshots]\n{bad}\n")), f, "{bad}");
    }
    assert!(matches!(
        ServiceDef::from_toml(&format!("{WEB}[snapshots]\nevery = \"1h\"\nat = 2\n")),
        Err(SpecError::Syntax(_))
    ));
}
