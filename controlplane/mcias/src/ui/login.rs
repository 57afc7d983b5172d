//! Signing in and out: the login forms (password, then the TOTP or passkey
//! step, or a passkey alone) and the session cookie they set; logout
//! revokes the session.

use super::*;

pub(super) fn session_cookie_header(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/")
}

pub(super) fn signed_in(token: &str, return_to: &str) -> Response {
    let mut r = Redirect::to(&safe_return(return_to)).into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie_header(token)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub(super) struct ReturnQuery {
    #[serde(default)]
    return_to: String,
}

pub(super) async fn login_form(Query(q): Query<ReturnQuery>) -> Response {
    login_page(&q.return_to, None)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    return_to: String,
}

pub(super) fn source(s: Option<Extension<SourceAddr>>) -> Option<std::net::IpAddr> {
    s.map(|Extension(SourceAddr(ip))| ip)
}

pub(super) async fn login(
    State(iam): State<Arc<Mcias>>,
    s: Option<Extension<SourceAddr>>,
    f: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = f else {
        return login_page("/ui/", Some((StatusCode::BAD_REQUEST, "bad form")));
    };
    let caller = Caller {
        principal: None,
        source: source(s),
    };
    let second = !f.nonce.is_empty();
    let input = LoginInput {
        username: f.username.clone(),
        password: f.password.clone(),
        totp_code: second.then(|| f.code.clone()),
        totp_nonce: second.then(|| f.nonce.clone()),
        service_name: None,
        tags: Vec::new(),
    };
    let result = iam.login(&caller, input).await;
    match result {
        Ok(session) => signed_in(&session.token, &f.return_to),
        Err(IamError::TotpRequired { nonce, .. }) => {
            totp_page(&f.username, &nonce, &f.return_to, None)
        }
        Err(IamError::PasskeyRequired) => passkey_page(&f.username, &f.return_to),
        Err(e) if second => {
            // A used nonce cannot be retried: back to the password.
            login_page(&f.return_to, Some((e.status(), &e.to_string())))
        }
        Err(e) => login_page(&f.return_to, Some((e.status(), &e.to_string()))),
    }
}

pub(super) async fn logout(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
) -> Response {
    if let Err(e) = iam.logout(&u.caller()) {
        return error_page(e.status(), &e.to_string());
    }
    let mut r = Redirect::to("/ui/login").into_response();
    for name in [COOKIE, LEGACY_COOKIE] {
        let gone = format!("{name}=; Max-Age=0; HttpOnly; Secure; SameSite=Strict; Path=/");
        if let Ok(v) = HeaderValue::from_str(&gone) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize)]
pub(super) struct PasskeyLoginJson {
    challenge_id: String,
    credential: serde_json::Value,
    #[serde(default)]
    return_to: String,
}

/// The end of a passkey sign-in from the login page: sets the session cookie.
pub(super) async fn login_passkey(
    State(iam): State<Arc<Mcias>>,
    s: Option<Extension<SourceAddr>>,
    b: Result<axum::Json<PasskeyLoginJson>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match b {
        Ok(axum::Json(b)) => b,
        Err(e) => return IamError::invalid("body", e.body_text()).into_response(),
    };
    let caller = Caller {
        principal: None,
        source: source(s),
    };
    match iam.finish_passkey_login(&caller, &b.challenge_id, &b.credential.to_string()) {
        Ok(session) => {
            let mut r = axum::Json(serde_json::json!({"redirect": safe_return(&b.return_to)}))
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie_header(&session.token)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => e.into_response(),
    }
}
