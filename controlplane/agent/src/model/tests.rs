use std::path::Path;

use proptest::prelude::*;

use super::*;

fn component(name: &str, image: &str) -> pb::Component {
    pb::Component {
        name: name.into(),
        image: image.into(),
        routes: vec![pb::ServiceRoute {
            name: "http".into(),
            container_port: 0,
            mode: pb::RouteMode::L7.into(),
            hostname: String::new(),
            public: false,
        }],
        health: Some(pb::HealthProbe {
            probe: Some(pb::health_probe::Probe::HttpPath("/".into())),
            timeout_seconds: 5,
        }),
        ..pb::Component::default()
    }
}

fn spec(c: Vec<pb::Component>) -> pb::ServiceSpec {
    pb::ServiceSpec {
        name: "web".into(),
        components: c,
        ..pb::ServiceSpec::default()
    }
}

fn check(s: pb::ServiceSpec) -> Result<Spec, Invalid> {
    Spec::from_proto(s, Path::new("/srv"), "svc.example.net")
}

#[test]
fn a_good_spec_round_trips_with_defaults_filled_in() {
    let mut c = component("app", "127.0.0.1:8443/apps/web:1.2.3");
    c.volumes = vec!["/srv/web/data:/data".into(), "conf:/etc/app:ro".into()];
    let s = check(spec(vec![c])).expect("valid");
    let app = &s.components[0];
    assert_eq!(app.routes[0].hostname, "web.svc.example.net");
    assert_eq!(app.routes[0].env_name(), "PORT_HTTP");
    assert_eq!(app.container("web"), "web-app");
    assert_eq!(app.volumes[0].host, Path::new("data"));
    assert!(app.volumes[1].read_only);
    // Back to the wire and in again: the same spec.
    assert_eq!(check(s.to_proto()).expect("again"), s);
}

#[test]
fn bad_specs_are_refused_naming_the_field() {
    let cases: Vec<(pb::ServiceSpec, &str)> = vec![
        (
            spec(vec![component("app", "bb:latest")]),
            "spec.components[0].image",
        ),
        (
            spec(vec![component("app", "bb")]),
            "spec.components[0].image",
        ),
        (
            spec(vec![component("app", "--privileged")]),
            "spec.components[0].image",
        ),
        (
            spec(vec![component("App", "bb:1")]),
            "spec.components[0].name",
        ),
        (
            spec(vec![component("a", "bb:1"), component("a", "bb:1")]),
            "spec.components[1].name",
        ),
        (spec(vec![]), "spec.components"),
        (
            pb::ServiceSpec {
                name: "../x".into(),
                ..spec(vec![component("a", "bb:1")])
            },
            "spec.name",
        ),
    ];
    for (s, field) in cases {
        assert_eq!(check(s).expect_err("refused").field, field);
    }
    for v in [
        "/etc:/x",
        "../up:/x",
        "/srv/web/../other:/x",
        "a:relative",
        "a:/x:rwx",
        "a",
    ] {
        let mut c = component("app", "bb:1");
        c.volumes = vec![v.into()];
        let e = check(spec(vec![c])).expect_err(v);
        assert_eq!(e.field, "spec.components[0].volumes", "{v}");
    }
    let mut c = component("app", "bb:1");
    c.env.insert("PORT".into(), "1".into());
    assert_eq!(
        check(spec(vec![c])).expect_err("PORT").field,
        "spec.components[0].env"
    );
    let mut c = component("app", "bb:1");
    c.routes.clear();
    assert_eq!(
        check(spec(vec![c])).expect_err("probe").field,
        "spec.components[0].health"
    );
    let mut c = component("app", "bb:1");
    c.routes[0].container_port = 70000;
    assert_eq!(
        check(spec(vec![c])).expect_err("port").field,
        "spec.components[0].routes[0].container_port"
    );
}

proptest! {
    /// Any volume string: refused, or a host path that stays inside
    /// /srv/<service> (no parent, root or prefix parts).
    #[test]
    fn accepted_volumes_stay_inside_the_service_dir(v in "[a-z./:]{0,24}", ro in any::<bool>()) {
        let mut c = component("app", "bb:1");
        c.volumes = vec![if ro { format!("{v}:ro") } else { v }];
        if let Ok(s) = check(spec(vec![c])) {
            for vol in &s.components[0].volumes {
                prop_assert!(vol.host.components().all(|p| matches!(p, PathPart::Normal(_) | PathPart::CurDir)));
                prop_assert!(Path::new("/srv/web").join(&vol.host).starts_with("/srv/web"));
            }
        }
    }

    /// Arbitrary names and images never panic, and what passes is pinned.
    #[test]
    fn arbitrary_names_and_images_never_panic(name in "\\PC{0,80}", image in "\\PC{0,80}") {
        if let Ok(s) = check(spec(vec![component(&name, &image)])) {
            let img = &s.components[0].image;
            prop_assert!(img.contains("@sha256:") || !img.ends_with(":latest"));
            prop_assert!(is_label(&s.components[0].name));
        }
    }
}
