//! What the admin console needs from the server (docs/console.md): its static files served
//! without credentials and with a strict Content-Security-Policy; a password sign-in exchanged
//! once for a session token that then works like a bearer token with the user's roles, until
//! logout; `info/login` telling who a token is. Browser tests of the pages themselves are the
//! binary's end-to-end tests.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn root(s: &Server) -> String {
    s.base.trim_end_matches("/openidm").to_string()
}

#[tokio::test]
async fn the_console_files_need_no_credentials() {
    let s = Server::start().await;
    for (path, kind) in [
        ("/admin/", "text/html"),
        ("/admin/index.html", "text/html"),
        ("/admin/app.css", "text/css"),
        ("/admin/js/main.js", "text/javascript"),
        ("/admin/js/pages/run.js", "text/javascript"),
        ("/admin/favicon.svg", "image/svg+xml"),
    ] {
        let resp = s
            .client
            .get(format!("{}{path}", root(&s)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(!resp.text().await.unwrap().is_empty(), "{path}");
    }
    let resp = s
        .client
        .get(format!("{}/admin/index.html", root(&s)))
        .send()
        .await
        .unwrap();
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="js/main.js">"#));

    // `/admin` sends the browser to `/admin/`, so that relative paths resolve under it.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirect
        .get(format!("{}/admin", root(&s)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(resp.headers()["location"], "/admin/");

    let resp = s
        .client
        .get(format!("{}/admin/js/nope.js", root(&s)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // The API next to it still wants credentials.
    let (status, _) = send(s.anon(Method::GET, "recon")).await;
    assert_eq!(status, 401);
    s.stop().await;
}

#[tokio::test]
async fn a_password_login_gives_a_session_token_with_the_users_roles() {
    let s = Server::start().await;
    let (status, body) = send(
        s.anon(Method::POST, "authentication?_action=login")
            .json(&json!({"username": USER, "password": USER_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["authenticationId"], USER);
    assert_eq!(body["roles"], json!(["admin"]));
    assert!(body["expiresIn"].as_u64().unwrap() > 0);
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 40, "a long random token: {token}");
    assert!(!body.to_string().contains(USER_PASSWORD));

    // The session token is a bearer token: reads and writes as the user.
    let (status, who) = send(s.anon(Method::GET, "info/login").bearer_auth(&token)).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(
        who,
        json!({"_id": "login", "authenticationId": USER, "authorization": {"roles": ["admin"]}})
    );
    let (status, created) = send(
        s.anon(Method::POST, "managed/user?_action=create")
            .bearer_auth(&token)
            .json(&json!({"userName": "via-session"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // IDM's headers work for the login too.
    let (status, body) = send(
        s.anon(Method::POST, "authentication?_action=login")
            .header("X-OpenIDM-Username", USER)
            .header("X-OpenIDM-Password", USER_PASSWORD),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        body["token"],
        token.as_str(),
        "every login gets its own token"
    );

    // Logout forgets the session: the token is refused from then on.
    let (status, body) = send(
        s.anon(Method::POST, "authentication?_action=logout")
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed"], true);
    let (status, body) = send(s.anon(Method::GET, "info/login").bearer_auth(&token)).await;
    assert_crest_error(status, &body, 401, "invalid credentials");
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_a_reader_token_stays_a_reader() {
    let s = Server::start().await;
    for body in [
        json!({"username": USER, "password": "wrong"}),
        json!({"username": "ghost", "password": USER_PASSWORD}),
    ] {
        let (status, answer) = send(
            s.anon(Method::POST, "authentication?_action=login")
                .json(&body),
        )
        .await;
        assert_crest_error(status, &answer, 401, "invalid credentials");
    }
    let (status, answer) = send(s.anon(Method::POST, "authentication?_action=login")).await;
    assert_crest_error(status, &answer, 401, "login needs");
    let (status, answer) = send(
        s.anon(Method::POST, "authentication?_action=login")
            .json(&json!({"username": USER})),
    )
    .await;
    assert_crest_error(status, &answer, 400, "password");

    // A token needs no login; `info/login` tells the console its roles.
    let (status, who) = send(s.reader(Method::GET, "info/login")).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["authorization"]["roles"], json!(["reader"]));
    let (status, answer) = send(s.reader(Method::POST, "authentication?_action=login")).await;
    assert_crest_error(status, &answer, 400, "needs no login");
    let (status, answer) = send(s.anon(Method::GET, "info/login")).await;
    assert_crest_error(status, &answer, 401, "authentication required");
    s.stop().await;
}
