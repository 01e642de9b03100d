//! Functions a Cognito user pool invokes (its triggers): the event as Cognito sends it, the
//! extractors a trigger's handler takes, and what it answers. A trigger returns the event,
//! possibly changed (`response.autoConfirmUser`), or refuses: the refusal's message is what
//! Cognito shows the person signing up (so it is written for them), and an internal
//! failure is refused with a message that says nothing of the cause (the cause is logged).
//!
//! Cognito waits 5 s for a trigger ([`crate::deploy::CognitoTrigger::limit_ms`]), so the
//! trigger's [`Deadline`] is the sooner of Lambda's and Cognito's.

use crate::handler::{Deadline, RequestId};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// What the person signing up is told when the trigger itself failed (a table unreachable):
/// no cause, and that trying again may work.
pub const UNAVAILABLE: &str = "Sign-in is temporarily unavailable; please try again.";

/// A trigger's refusal: the message Cognito shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub message: String,
}

impl Refused {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl From<crate::aws::errors::StoreError> for Refused {
    fn from(e: crate::aws::errors::StoreError) -> Self {
        tracing::error!(error = %e, "the trigger's store failed: refused with {UNAVAILABLE:?}");
        Self::new(UNAVAILABLE)
    }
}

impl From<crate::handler::Stopped> for Refused {
    fn from(e: crate::handler::Stopped) -> Self {
        tracing::error!(error = %e, "the trigger ran out of time: refused with {UNAVAILABLE:?}");
        Self::new(UNAVAILABLE)
    }
}

/// A trigger's answer: the event to give back to Cognito, or a refusal.
pub type TriggerResult = Result<Value, Refused>;

/// One invocation of a trigger.
pub struct CognitoCall<'a> {
    pub request_id: &'a str,
    /// Lambda's deadline.
    pub deadline: Option<SystemTime>,
    /// When Cognito stops waiting (the invocation's start plus its limit).
    pub limit: SystemTime,
    pub event: &'a Value,
}

/// What a trigger's handler takes from its invocation.
pub trait FromCognito: Sized + Send + 'static {
    fn from_cognito(call: &CognitoCall<'_>) -> Result<Self, Refused>;
}

/// The event as Cognito sent it (a trigger returns it, changed or not).
#[derive(Debug, Clone)]
pub struct Event(pub Value);

impl FromCognito for Event {
    fn from_cognito(call: &CognitoCall<'_>) -> Result<Self, Refused> {
        Ok(Self(call.event.clone()))
    }
}

impl FromCognito for Deadline {
    fn from_cognito(call: &CognitoCall<'_>) -> Result<Self, Refused> {
        let sooner = match call.deadline {
            Some(d) if d < call.limit => d,
            _ => call.limit,
        };
        Ok(Self(Some(sooner)))
    }
}

impl FromCognito for RequestId {
    fn from_cognito(call: &CognitoCall<'_>) -> Result<Self, Refused> {
        Ok(Self(call.request_id.to_owned()))
    }
}

/// When Cognito stops waiting for an invocation that starts now.
pub fn limit_from_now(limit_ms: u64) -> SystemTime {
    SystemTime::now() + Duration::from_millis(limit_ms)
}

crate::event_handlers! {
    call: CognitoCall,
    result: TriggerResult,
    from: FromCognito::from_cognito,
    handler: CognitoHandler,
    erased: ErasedCognito,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_triggers_deadline_is_the_sooner_of_lambdas_and_cognitos() {
        let now = SystemTime::now();
        let event = Value::Null;
        let call = |deadline| CognitoCall {
            request_id: "r",
            deadline,
            limit: now + Duration::from_secs(5),
            event: &event,
        };
        let d = |c: &CognitoCall<'_>| Deadline::from_cognito(c).unwrap().0.unwrap();
        assert_eq!(
            d(&call(Some(now + Duration::from_secs(3)))),
            now + Duration::from_secs(3)
        );
        assert_eq!(
            d(&call(Some(now + Duration::from_secs(60)))),
            now + Duration::from_secs(5)
        );
        assert_eq!(d(&call(None)), now + Duration::from_secs(5));
    }
}
