//! Console test kit: a signed-in browser-less client (the session cookie
//! and its CSRF token, kept by hand) for page and API requests.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::kit::{Resp, Server};

/// A console session of one account.
pub struct Web {
    pub http: reqwest::Client,
    pub base: String,
    /// `weir_session=<id>`.
    pub cookie: String,
    /// The whole `Set-Cookie` the sign-in answered with.
    pub set_cookie: String,
    pub csrf: String,
}

/// The value of `name="csrf-token" content="…"` (pages) or of the sign-in
/// form's hidden `csrf` field.
pub fn csrf_of(html: &str) -> String {
    for marker in ["name=\"csrf-token\" content=\"", "name=\"csrf\" value=\""] {
        if let Some(i) = html.find(marker) {
            let rest = &html[i + marker.len()..];
            return rest[..rest.find('"').unwrap_or(0)].to_string();
        }
    }
    String::new()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().trim().to_string()
}

impl Web {
    /// Signs in through the form, as a browser would.
    pub async fn sign_in(s: &Server, token: &str) -> Web {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = http.get(format!("{}/sign-in", s.base)).send().await.unwrap();
        assert_eq!(form.status(), StatusCode::OK);
        let pre = form
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("weir_signin="))
            .expect("sign-in cookie");
        let html = form.text().await.unwrap();
        let r = http
            .post(format!("{}/sign-in", s.base))
            .header("cookie", cookie_pair(&pre))
            .form(&[("token", token), ("csrf", &csrf_of(&html)), ("next", "/lbs")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in answered {}", r.status());
        let set_cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("weir_session="))
            .expect("session cookie");
        let mut w = Web {
            http,
            base: s.base.clone(),
            cookie: cookie_pair(&set_cookie),
            set_cookie,
            csrf: String::new(),
        };
        let (status, html) = w.page("/lbs").await;
        assert_eq!(status, 200);
        w.csrf = csrf_of(&html);
        assert!(!w.csrf.is_empty(), "pages carry the CSRF token");
        w
    }

    /// GET a console page: status and HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{}", self.base, path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// An API call as the console's script makes it (cookie + CSRF header).
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.api_with(method, path, body, Some(&self.csrf)).await
    }

    /// The same with the CSRF header given (or left out).
    pub async fn api_with(&self, method: Method, path: &str, body: Option<Value>, csrf: Option<&str>) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("cookie", &self.cookie);
        if let Some(c) = csrf {
            rb = rb.header("x-csrf-token", c);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let revision = r
            .headers()
            .get("x-weir-revision")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let bytes = r.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, body, revision }
    }
}
