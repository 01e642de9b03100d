//! An entry of the table's handler: what invokes it (its kind), its auth, and how it is
//! built, and the macros that make one ([`crate::endpoint!`] for an API route,
//! [`crate::s3_endpoint!`] for a function S3 invokes, [`crate::cognito_endpoint!`] for a
//! user pool's trigger). Its own module because it joins the handler shapes
//! ([`crate::handler`], [`crate::s3_event`], [`crate::cognito_event`]), none of which knows
//! the others.

/// An entry's handler as the table holds it: what invokes it (the function's kind), its
/// auth, and how it is built. The macro that makes it ([`crate::endpoint!`],
/// [`crate::s3_endpoint!`]) fixes the kind and the handler's shape together, so an S3
/// function cannot be given an HTTP handler.
#[derive(Clone, Copy)]
pub struct Endpoint {
    pub auth: crate::handler::Auth,
    pub trigger: crate::deploy::Trigger,
    pub build: fn(&mut crate::init::Init<'_>) -> Result<Built, crate::error::StartupError>,
}

/// A built handler, of its kind.
pub enum Built {
    Http(Box<dyn crate::handler::Erased>),
    S3(Box<dyn crate::s3_event::ErasedS3>),
    Cognito(Box<dyn crate::cognito_event::ErasedCognito>),
}

impl Endpoint {
    /// No handler: routes of tables and generated documents in tests. Building it is a
    /// start-up error.
    pub const MISSING: Endpoint = Endpoint {
        auth: crate::handler::Auth::None,
        trigger: crate::deploy::Trigger::Api,
        build: |_| {
            Err(crate::error::StartupError(
                "this route has no handler".into(),
            ))
        },
    };
}

/// A route's [`Endpoint`]: `endpoint!(handler, state)` with `state` a function from
/// `&mut Init` to the handler's state, or `endpoint!(handler)` for a handler whose state is
/// `()`. The route's auth follows from the handler's argument types.
#[macro_export]
macro_rules! endpoint {
    ($handler:expr, $state:expr) => {
        $crate::endpoint::Endpoint {
            auth: $crate::handler::auth_of(&$handler),
            trigger: $crate::deploy::Trigger::Api,
            build: |init| {
                Ok($crate::endpoint::Built::Http($crate::handler::bind(
                    $handler,
                    ($state)(init)?,
                )))
            },
        }
    };
    ($handler:expr) => {
        $crate::endpoint::Endpoint {
            auth: $crate::handler::auth_of(&$handler),
            trigger: $crate::deploy::Trigger::Api,
            build: |_| {
                Ok($crate::endpoint::Built::Http($crate::handler::bind(
                    $handler,
                    (),
                )))
            },
        }
    };
}

/// An S3 function's entry point: `s3_endpoint!(handler, state, NOTIFICATION)`, with
/// `state` a function from `&mut Init` to the handler's state and `NOTIFICATION` the
/// [`crate::route::S3Notification`] that invokes it.
#[macro_export]
macro_rules! s3_endpoint {
    ($handler:expr, $state:expr, $notification:expr) => {
        $crate::endpoint::Endpoint {
            auth: $crate::handler::Auth::None,
            trigger: $crate::deploy::Trigger::S3($notification),
            build: |init| {
                Ok($crate::endpoint::Built::S3($crate::s3_event::bind(
                    $handler,
                    ($state)(init)?,
                )))
            },
        }
    };
}

/// A Cognito trigger's entry point: `cognito_endpoint!(handler, state, TRIGGER)`, with
/// `state` a function from `&mut Init` to the handler's state and `TRIGGER` the
/// [`crate::route::CognitoTrigger`] that invokes it.
#[macro_export]
macro_rules! cognito_endpoint {
    ($handler:expr, $state:expr, $trigger:expr) => {
        $crate::endpoint::Endpoint {
            auth: $crate::handler::Auth::None,
            trigger: $crate::deploy::Trigger::Cognito($trigger),
            build: |init| {
                Ok($crate::endpoint::Built::Cognito(
                    $crate::cognito_event::bind($handler, ($state)(init)?),
                ))
            },
        }
    };
}
