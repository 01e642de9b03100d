//! What a handler is: an async function whose arguments are extractors.
//!
//! As in axum, a handler's argument types say what it needs, and the compiler refuses a
//! handler that would run without it: a handler that takes a [`Caller`] cannot run for an
//! event without a verified `sub`, and its route is a JWT route because of that type
//! ([`Handler::AUTH`]), never because of a separate flag. Extractors run in argument order;
//! the first that refuses answers for the route.
//!
//! The first argument is the route's state, built once at start-up ([`crate::endpoint!`]);
//! the rest implement [`FromRequest`]. Type erasure happens here, once: [`Endpoint`] is
//! what the route table holds.

use crate::error::ApiError;
use crate::identity::{Caller, SuperUser};
use crate::response::Response;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// Time kept back from the invocation's deadline to answer: a handler that runs out of
/// time answers 503 itself, instead of Lambda cutting it off (API Gateway's bare 500, and
/// a sandbox reset).
pub const ANSWER_RESERVE: Duration = Duration::from_millis(300);

/// A boxed, sendable future: what a `dyn` trait method can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler returns.
pub type HandlerResult = Result<Response, ApiError>;

/// How API Gateway authenticates a route's caller before the function runs. Derived from
/// the handler's argument types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// API Gateway's Cognito JWT authorizer.
    Jwt,
    /// No authorizer (the handler may still check a key or a signature of its own).
    None,
}

impl Auth {
    /// The name API Gateway (and `routes/*.json`) uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "JWT",
            Self::None => "NONE",
        }
    }

    /// A route needs the authorizer if any of its extractors does.
    pub const fn and(self, other: Auth) -> Auth {
        match (self, other) {
            (Self::None, Self::None) => Self::None,
            _ => Self::Jwt,
        }
    }
}

/// One request as the handler's extractors see it.
pub struct Request<'a> {
    /// The Lambda request id (also in every log line).
    pub request_id: &'a str,
    /// Path parameters by name.
    pub params: Vec<(String, String)>,
    /// The whole event, for extractors that read headers, query or body.
    pub event: &'a ApiGatewayV2httpRequest,
    /// When Lambda stops this invocation (`None`: no deadline, e.g. a local run).
    pub deadline: Option<SystemTime>,
}

impl Request<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header's value (names are case-insensitive); `None` when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.event.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Something a handler takes from the request. `AUTH` is what it needs from API Gateway.
pub trait FromRequest: Sized + Send + 'static {
    const AUTH: Auth = Auth::None;
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError>;
}

impl FromRequest for Caller {
    const AUTH: Auth = Auth::Jwt;
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        Caller::from_context(&req.event.request_context)
            .map_err(|e| ApiError::Unauthenticated { reason: e.reason() })
    }
}

impl FromRequest for SuperUser {
    const AUTH: Auth = Auth::Jwt;
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let caller = Caller::from_request(req)?;
        SuperUser::from_context(caller, &req.event.request_context).ok_or(ApiError::Forbidden)
    }
}

/// The invocation's deadline: work a handler wraps in [`Deadline::run`] stops in time to
/// answer 503 before Lambda cuts the invocation off.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Option<SystemTime>);

impl FromRequest for Deadline {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        Ok(Self(req.deadline))
    }
}

impl Deadline {
    /// The time a handler may still spend: up to the deadline, less [`ANSWER_RESERVE`].
    pub fn time_left(self) -> Option<Duration> {
        self.0.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(ANSWER_RESERVE)
        })
    }

    /// Runs `work` within [`Deadline::time_left`]; past it, a 503 whose log line says the
    /// deadline was near. No time left at all: `work` is not started (a write polled once
    /// could still be sent).
    pub async fn run<T>(self, work: impl Future<Output = T>) -> Result<T, ApiError> {
        self.within(work)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))
    }

    /// [`Deadline::run`] for any kind of function: past the deadline, [`Stopped`].
    pub async fn within<T>(self, work: impl Future<Output = T>) -> Result<T, Stopped> {
        match self.time_left() {
            None => Ok(work.await),
            Some(left) if left.is_zero() => Err(Stopped),
            Some(left) => tokio::time::timeout(left, work).await.map_err(|_| Stopped),
        }
    }
}

/// Work stopped at [`Deadline::time_left`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped before the invocation's deadline ({} ms kept to answer)", ANSWER_RESERVE.as_millis())]
pub struct Stopped;

/// Lambda's request id of the invocation (every kind of function has one).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl FromRequest for RequestId {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        Ok(Self(req.request_id.to_owned()))
    }
}

/// A path parameter's type: its name in the route key, and how its text is read.
pub trait PathParam: Sized + Send + 'static {
    const NAME: &'static str;
    fn parse(text: &str) -> Result<Self, ApiError>;
}

/// One path parameter, read as `T`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: PathParam> FromRequest for Path<T> {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let text = req
            .param(T::NAME)
            .ok_or_else(|| ApiError::internal(format!("no path parameter {}", T::NAME)))?;
        T::parse(text).map(Path)
    }
}

/// The body, parsed as JSON into `T`. Not JSON, or not a `T`: 400 `Invalid JSON body`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromRequest for Json<T> {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        serde_json::from_str(&body_text(req)?)
            .map(Json)
            .map_err(|_| ApiError::BadRequest {
                message: "Invalid JSON body",
            })
    }
}

/// The body as text (decoded when API Gateway sent it base64-encoded); empty when there is
/// none. For handlers that must answer each malformed body in their own words.
#[derive(Debug)]
pub struct Body(pub String);

impl FromRequest for Body {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        body_text(req).map(|text| Self(text.into_owned()))
    }
}

/// The one reading of the body both [`Json`] and [`Body`] start from: borrowed as sent, or
/// decoded from base64. Not base64, or not UTF-8 once decoded (so not JSON either): 400.
fn body_text<'r>(req: &'r Request<'_>) -> Result<std::borrow::Cow<'r, str>, ApiError> {
    let body = req.event.body.as_deref().unwrap_or("");
    if !req.event.is_base64_encoded {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(std::borrow::Cow::Owned)
        .ok_or(ApiError::BadRequest {
            message: "Invalid JSON body",
        })
}

/// A handler: `async fn(state, extractors...) -> HandlerResult`, for up to five extractors.
pub trait Handler<S, Args>: Copy + Send + Sync + 'static {
    /// What API Gateway must check before this handler runs: the union of its extractors'.
    const AUTH: Auth;
    fn call(self, state: S, req: &Request<'_>) -> BoxFuture<'static, HandlerResult>;
}

macro_rules! impl_handler {
    ($($a:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<S, F, Fut, $($a,)*> Handler<S, ($($a,)*)> for F
        where
            F: Fn(S, $($a,)*) -> Fut + Copy + Send + Sync + 'static,
            Fut: Future<Output = HandlerResult> + Send + 'static,
            S: Send + 'static,
            $($a: FromRequest,)*
        {
            const AUTH: Auth = Auth::None $(.and($a::AUTH))*;

            fn call(self, state: S, req: &Request<'_>) -> BoxFuture<'static, HandlerResult> {
                $(
                    let $a = match $a::from_request(req) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e))),
                    };
                )*
                Box::pin(self(state, $($a,)*))
            }
        }
    };
}

impl_handler!();
impl_handler!(A1);
impl_handler!(A1, A2);
impl_handler!(A1, A2, A3);
impl_handler!(A1, A2, A3, A4);
impl_handler!(A1, A2, A3, A4, A5);

/// A built handler with its state, its types erased: what the dispatcher calls.
pub trait Erased: Send + Sync {
    fn call(&self, req: &Request<'_>) -> BoxFuture<'static, HandlerResult>;
}

struct Bound<S, A, H> {
    state: S,
    handler: H,
    args: PhantomData<fn() -> A>,
}

impl<S, A, H> Erased for Bound<S, A, H>
where
    S: Clone + Send + Sync + 'static,
    H: Handler<S, A>,
{
    fn call(&self, req: &Request<'_>) -> BoxFuture<'static, HandlerResult> {
        self.handler.call(self.state.clone(), req)
    }
}

/// Binds a handler to its state (what [`crate::endpoint!`] builds at start-up).
pub fn bind<S, A, H>(handler: H, state: S) -> Box<dyn Erased>
where
    S: Clone + Send + Sync + 'static,
    A: 'static,
    H: Handler<S, A>,
{
    Box::new(Bound {
        state,
        handler,
        args: PhantomData,
    })
}

/// The route's auth, read off the handler's type (for [`crate::endpoint!`], in a `const`).
pub const fn auth_of<S, A, H: Handler<S, A>>(_: &H) -> Auth {
    H::AUTH
}

/// The handler machinery of an event kind that is not an API call, written once: a handler
/// trait for `async fn(state, extractors...) -> RESULT` with up to three extractors (each
/// a `FROM` of the kind's `CALL`), the handler as the table holds it (`ERASED`), and
/// `bind`. [`crate::s3_event`] and [`crate::cognito_event`] each expand it once.
#[macro_export]
#[doc(hidden)]
macro_rules! event_handlers {
    (
        call: $call:ident,
        result: $result:ty,
        from: $from:ident :: $from_fn:ident,
        handler: $handler:ident,
        erased: $erased:ident $(,)?
    ) => {
        /// A handler of this kind: `async fn(state, extractors...)`, up to three extractors.
        pub trait $handler<S, Args>: Copy + Send + Sync + 'static {
            fn call(self, state: S, call: &$call<'_>) -> $crate::handler::BoxFuture<'static, $result>;
        }

        $crate::__event_handler_impl!($handler, $call, $result, $from, $from_fn;);
        $crate::__event_handler_impl!($handler, $call, $result, $from, $from_fn; A1);
        $crate::__event_handler_impl!($handler, $call, $result, $from, $from_fn; A1, A2);
        $crate::__event_handler_impl!($handler, $call, $result, $from, $from_fn; A1, A2, A3);

        /// A handler bound to its state, as the table holds it.
        pub trait $erased: Send + Sync {
            fn call(&self, call: &$call<'_>) -> $crate::handler::BoxFuture<'static, $result>;
        }

        struct Bound<S, A, H> {
            state: S,
            handler: H,
            args: std::marker::PhantomData<fn() -> A>,
        }

        impl<S, A, H> $erased for Bound<S, A, H>
        where
            S: Clone + Send + Sync + 'static,
            H: $handler<S, A>,
        {
            fn call(&self, call: &$call<'_>) -> $crate::handler::BoxFuture<'static, $result> {
                self.handler.call(self.state.clone(), call)
            }
        }

        /// The handler with its state, for the table.
        pub fn bind<S, A, H>(handler: H, state: S) -> Box<dyn $erased>
        where
            S: Clone + Send + Sync + 'static,
            A: 'static,
            H: $handler<S, A>,
        {
            Box::new(Bound {
                state,
                handler,
                args: std::marker::PhantomData,
            })
        }
    };
}

/// One arity of [`event_handlers!`]'s handler trait.
#[macro_export]
#[doc(hidden)]
macro_rules! __event_handler_impl {
    ($handler:ident, $call:ident, $result:ty, $from:ident, $from_fn:ident; $($a:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<S, F, Fut, $($a,)*> $handler<S, ($($a,)*)> for F
        where
            F: Fn(S, $($a,)*) -> Fut + Copy + Send + Sync + 'static,
            Fut: std::future::Future<Output = $result> + Send + 'static,
            S: Send + 'static,
            $($a: $from,)*
        {
            fn call(self, state: S, call: &$call<'_>) -> $crate::handler::BoxFuture<'static, $result> {
                $(
                    let $a = match $a::$from_fn(call) {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e))),
                    };
                )*
                Box::pin(self(state, $($a,)*))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::error::StartupError;
    use crate::init::Init;
    use lambda_http::http::StatusCode;

    async fn public(_: (), _: Deadline) -> HandlerResult {
        Ok(Response::json(StatusCode::OK, &"public"))
    }

    async fn signed_in(who: &'static str, caller: Caller, _: Deadline) -> HandlerResult {
        Ok(Response::json(
            StatusCode::OK,
            &format!("{who} {}", caller.user_id),
        ))
    }

    async fn super_only(_: (), _: Deadline, _: SuperUser) -> HandlerResult {
        Ok(Response::empty(StatusCode::NO_CONTENT))
    }

    #[test]
    fn the_argument_types_decide_the_auth() {
        const PUBLIC: Endpoint = crate::endpoint!(public);
        const JWT: Endpoint =
            crate::endpoint!(signed_in, |_: &mut Init<'_>| Ok::<_, StartupError>("hi"));
        const SUPER: Endpoint = crate::endpoint!(super_only);
        assert_eq!(PUBLIC.auth, Auth::None);
        assert_eq!(JWT.auth, Auth::Jwt);
        assert_eq!(SUPER.auth, Auth::Jwt);
    }

    fn event(claims: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
        let mut e: ApiGatewayV2httpRequest =
            serde_json::from_str(include_str!("../events/registration-keys-post.json")).unwrap();
        let jwt = e
            .request_context
            .authorizer
            .as_mut()
            .unwrap()
            .jwt
            .as_mut()
            .unwrap();
        jwt.claims.clear();
        for (k, v) in claims {
            jwt.claims.insert((*k).into(), (*v).into());
        }
        e
    }

    fn request(e: &ApiGatewayV2httpRequest) -> Request<'_> {
        Request {
            request_id: "r",
            params: vec![],
            event: e,
            deadline: None,
        }
    }

    #[tokio::test]
    async fn extractors_run_in_order_and_the_first_refusal_answers() {
        let h = bind(signed_in, "hi");
        let e = event(&[("sub", "alice")]);
        let r = h.call(&request(&e)).await.unwrap();
        assert_eq!(r.body, r#""hi alice""#);

        let e = event(&[]);
        let err = h.call(&request(&e)).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);

        // Signed in, but not a super user: 403; with the group in either of API Gateway's
        // forms: the handler runs.
        let s = bind(super_only, ());
        let e = event(&[("sub", "alice"), ("cognito:groups", "[other]")]);
        assert_eq!(
            s.call(&request(&e)).await.unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        for groups in ["[other super_users]", r#"["super_users"]"#] {
            let e = event(&[("sub", "alice"), ("cognito:groups", groups)]);
            assert_eq!(s.call(&request(&e)).await.unwrap().status.as_u16(), 204);
        }
        let e = event(&[("cognito:groups", "[super_users]")]);
        assert_eq!(
            s.call(&request(&e)).await.unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_passed_deadline_starts_no_work() {
        let started = std::sync::atomic::AtomicBool::new(false);
        let past = Deadline(Some(SystemTime::now() - Duration::from_secs(1)));
        let err = past
            .run(async { started.store(true, std::sync::atomic::Ordering::SeqCst) })
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst));
        assert!(Deadline(None).run(async { 1 }).await.is_ok());
    }

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        a: u8,
    }

    #[test]
    fn json_bodies_are_parsed_or_refused_with_upstreams_message() {
        let mut e = event(&[]);
        e.body = Some(r#"{"a":7}"#.into());
        assert_eq!(Json::<Body>::from_request(&request(&e)).unwrap().0.a, 7);
        for bad in ["", "{", "[]", r#"{"a":"x"}"#] {
            e.body = Some(bad.into());
            let err = Json::<Body>::from_request(&request(&e)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ApiError::BadRequest {
                        message: "Invalid JSON body"
                    }
                ),
                "{bad}"
            );
        }
    }
}
