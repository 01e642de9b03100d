//! Who is calling: the user that API Gateway's JWT authorizer verified.
//!
//! API Gateway validates the Cognito token (signature, issuer, audience, expiry) before the
//! event reaches us and passes the token's claims in `requestContext.authorizer.jwt.claims`.
//! This module only reads them; it never sees or checks a raw token.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The `sub` claim: the Cognito user's stable, unique id.
    pub user_id: String,
    /// The `email` claim, or `""`: Cognito access tokens usually carry none (FireFly stores
    /// the same `""` then).
    pub email: String,
}

/// A caller in the `super_users` Cognito group (claim `cognito:groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperUser(pub Caller);

/// The group whose members may list every device.
pub const SUPER_USERS: &str = "super_users";

/// Why no caller could be read; logged, and answered with 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCaller {
    NoAuthorizer,
    NoSub,
    BadSub,
}

impl NoCaller {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoAuthorizer => "no JWT authorizer context in the event",
            Self::NoSub => "the JWT claims have no sub",
            Self::BadSub => "the sub claim is empty, too long or has control or format characters",
        }
    }
}

/// Longest `sub` accepted. Cognito's are 36-character UUIDs; the bound keeps a forged
/// event from writing arbitrary amounts of data into the table and the logs.
const MAX_SUB_LEN: usize = 128;

impl Caller {
    pub fn from_context(ctx: &ApiGatewayV2httpRequestContext) -> Result<Self, NoCaller> {
        let jwt = ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .ok_or(NoCaller::NoAuthorizer)?;
        let sub = jwt.claims.get("sub").ok_or(NoCaller::NoSub)?;
        if sub.trim().is_empty()
            || sub.len() > MAX_SUB_LEN
            || sub.chars().any(|c| c.is_control() || is_format(c))
        {
            return Err(NoCaller::BadSub);
        }
        let email = jwt.claims.get("email").cloned().unwrap_or_default();
        Ok(Self {
            user_id: sub.clone(),
            email,
        })
    }
}

impl SuperUser {
    /// `caller` if the claims put them in [`SUPER_USERS`]. API Gateway passes a list claim
    /// as `[a b]` (split on whitespace only); a JSON array (`["a","b"]`) also occurs (read
    /// as JSON). Both read exactly: a group named `x,super_users` or `"super_users"` is not
    /// `super_users`.
    pub fn from_context(caller: Caller, ctx: &ApiGatewayV2httpRequestContext) -> Option<Self> {
        let groups = ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.claims.get("cognito:groups"))?;
        let text = groups.trim();
        let member = match serde_json::from_str::<Vec<String>>(text) {
            Ok(list) => list.iter().any(|g| g == SUPER_USERS),
            Err(_) => text
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(text)
                .split_whitespace()
                .any(|g| g == SUPER_USERS),
        };
        member.then_some(Self(caller))
    }
}

/// Unicode general category Cf (format characters, Unicode 16): invisible characters that
/// reorder or hide text (bidi overrides and isolates, zero-width joiners, the BOM, tag
/// characters). A user id bound to a device must read the same everywhere it is shown.
fn is_format(c: char) -> bool {
    const CF: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    CF.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(authorizer: serde_json::Value) -> ApiGatewayV2httpRequestContext {
        let mut v = serde_json::json!({
            "routeKey": "POST /registration-keys",
            "requestId": "r",
            "timeEpoch": 0,
            "http": {"method": "POST", "path": "/registration-keys", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "t"}
        });
        if !authorizer.is_null() {
            v["authorizer"] = authorizer;
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reads_sub_from_jwt_claims() {
        let c = ctx(
            serde_json::json!({"jwt": {"claims": {"sub": "u-1", "email": "a@b"}, "scopes": null}}),
        );
        let caller = Caller::from_context(&c).unwrap();
        assert_eq!(caller.user_id, "u-1");
        assert_eq!(caller.email, "a@b");
        let c = ctx(serde_json::json!({"jwt": {"claims": {"sub": "u-1"}}}));
        assert_eq!(Caller::from_context(&c).unwrap().email, "");
    }

    #[test]
    fn super_users_are_read_from_both_forms_of_the_groups_claim() {
        let is_super = |groups: &str| {
            let c =
                ctx(serde_json::json!({"jwt": {"claims": {"sub": "u", "cognito:groups": groups}}}));
            SuperUser::from_context(Caller::from_context(&c).unwrap(), &c).is_some()
        };
        for yes in [
            "[super_users]",
            "[a super_users b]",
            r#"["a","super_users"]"#,
            "super_users",
        ] {
            assert!(is_super(yes), "{yes}");
        }
        for no in [
            "[]",
            "[super_users_x]",
            "[a b]",
            r#"["super"]"#,
            "",
            // Read exactly (issue 25, item 9): a group of another name is not super_users.
            "[x,super_users]",
            r#"[a "super_users"]"#,
            r#"["x,super_users"]"#,
            r#"["\"super_users\""]"#,
            r#""super_users""#,
        ] {
            assert!(!is_super(no), "{no}");
        }
        let c = ctx(serde_json::json!({"jwt": {"claims": {"sub": "u"}}}));
        assert!(SuperUser::from_context(Caller::from_context(&c).unwrap(), &c).is_none());
    }

    #[test]
    fn missing_authorizer_jwt_or_sub_is_refused() {
        assert_eq!(
            Caller::from_context(&ctx(serde_json::Value::Null)),
            Err(NoCaller::NoAuthorizer)
        );
        assert_eq!(
            Caller::from_context(&ctx(serde_json::json!({"lambda": {"sub": "u"}}))),
            Err(NoCaller::NoAuthorizer)
        );
        assert_eq!(
            Caller::from_context(&ctx(serde_json::json!({"jwt": {"claims": {"email": "a"}}}))),
            Err(NoCaller::NoSub)
        );
        assert_eq!(
            Caller::from_context(&ctx(serde_json::json!({"jwt": {"claims": null}}))),
            Err(NoCaller::NoSub)
        );
    }

    #[test]
    fn blank_long_or_control_character_subs_are_refused() {
        for bad in ["", "   ", "a\nb", "a\u{0}", &"x".repeat(129)] {
            let c = ctx(serde_json::json!({"jwt": {"claims": {"sub": bad}}}));
            assert_eq!(Caller::from_context(&c), Err(NoCaller::BadSub), "{bad:?}");
        }
        // Format characters: bidi overrides and isolates, zero-width space and joiner, BOM,
        // soft hyphen, a tag character.
        for bad in [
            "user\u{202E}gnp.exe",
            "a\u{2066}b",
            "a\u{200B}b",
            "a\u{200D}b",
            "\u{FEFF}user",
            "us\u{AD}er",
            "u\u{E0041}",
        ] {
            let c = ctx(serde_json::json!({"jwt": {"claims": {"sub": bad}}}));
            assert_eq!(Caller::from_context(&c), Err(NoCaller::BadSub), "{bad:?}");
        }
        let c = ctx(serde_json::json!({"jwt": {"claims": {"sub": "ユーザー-é"}}}));
        assert_eq!(Caller::from_context(&c).unwrap().user_id, "ユーザー-é");
    }
}
