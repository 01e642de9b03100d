//! Deployment facts: the AWS resources a route uses and the IAM actions it needs on them,
//! and what invokes a function ([`Trigger`]).
//!
//! A leaf module (it imports nothing of this crate): [`crate::route`] lists these facts per
//! route, [`crate::init`] checks a handler asks only for what they declare, and
//! `firefly-gen` writes the template's roles and environments from them.

/// Something in AWS a route uses. It decides the IAM resource its actions are granted on
/// and the environment the function gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Resource {
    /// A DynamoDB table, deployed by its own stack before any function that uses it.
    DynamoTable {
        /// The table's name in AWS.
        name: &'static str,
        /// The variable that carries the name to the function.
        env: &'static str,
        /// The stack that creates the table, and the workflow that deploys that stack.
        stack: &'static str,
        workflow: &'static str,
    },
    /// An S3 bucket, made by its own stack (FireFly's). Its name is the deployer's choice,
    /// so it comes from a template parameter (FireFly's name for it), which
    /// `scripts/deploy/resolve` reads from the bucket stack's output.
    Bucket {
        /// The template parameter that names it.
        parameter: &'static str,
        /// The bucket stack's output that holds the name.
        output: &'static str,
        /// The variable that carries the name to the function.
        env: &'static str,
        /// The stack that creates the bucket, and the workflow that deploys that stack.
        stack: &'static str,
        workflow: &'static str,
    },
    /// A CloudFront distribution, made by its own stack (FireFly's); its ID comes from a
    /// template parameter, which `scripts/deploy/resolve` reads from that stack's output.
    Distribution {
        /// The template parameter that holds its ID.
        parameter: &'static str,
        /// The distribution stack's output that holds the ID.
        output: &'static str,
        /// The variable that carries the ID to the function.
        env: &'static str,
        /// The stack that creates the distribution, and the workflow that deploys it.
        stack: &'static str,
        workflow: &'static str,
    },
    /// A value another stack publishes that names nothing the function acts on (the
    /// firmware domain OTA's URLs use): a template parameter, which
    /// `scripts/deploy/resolve` reads from that stack's output. No IAM.
    StackValue {
        parameter: &'static str,
        output: &'static str,
        env: &'static str,
        stack: &'static str,
        workflow: &'static str,
    },
    /// A setting of the deployment (`ENVIRONMENT_NAME`): a template parameter with its
    /// allowed values and default, which `scripts/deploy/resolve` takes from the deploying
    /// job's variable named as `env` when that is set. No IAM.
    Setting {
        parameter: &'static str,
        env: &'static str,
        allowed: &'static [&'static str],
        default: &'static str,
    },
    /// A Cognito user pool, made by its own stack (FireFly's `firefly-cognito`); its ID comes
    /// from a template parameter, which `scripts/deploy/resolve` reads from that stack's
    /// output.
    UserPool {
        parameter: &'static str,
        output: &'static str,
        env: &'static str,
        stack: &'static str,
        workflow: &'static str,
    },
    /// The AppConfig profile, read through the AppConfig Lambda extension
    /// ([`crate::config`]): `APP_CONFIG_ENV`, actions on `*`.
    AppConfig,
    /// AppConfig's API on the functions' applications (FireFly's console's App
    /// Configuration page): actions on `*`, as the applications' IDs do not exist when the
    /// stack deploys. No environment.
    AppConfigApplications,
    /// Lambda's API on the Firefly functions (`firefly-func-*`): `lambda:ListFunctions` on
    /// `*` (it takes no resource), any other action on those functions' ARNs only.
    Functions,
}

/// A resource another stack makes and names: the deploy reads its name (or ID) from that
/// stack's output into a template parameter, which the function gets as a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromStack {
    pub parameter: &'static str,
    pub stack: &'static str,
    pub output: &'static str,
    pub workflow: &'static str,
    pub env: &'static str,
    /// `bucket` or `distribution`: what the parameter's value must look like.
    pub kind: &'static str,
}

impl Resource {
    /// The environment variables this resource gives a function, with their template
    /// values (`!Ref`/`!Sub` expressions are written as in the template).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::DynamoTable { name, env, .. } => vec![(*env, (*name).to_owned())],
            Self::Bucket { parameter, env, .. }
            | Self::Distribution { parameter, env, .. }
            | Self::StackValue { parameter, env, .. }
            | Self::UserPool { parameter, env, .. }
            | Self::Setting { parameter, env, .. } => vec![(*env, format!("!Ref {parameter}"))],
            Self::AppConfig => TEMPLATE_ENV
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect(),
            Self::AppConfigApplications | Self::Functions => vec![],
        }
    }
}

impl Resource {
    /// What the deploy reads from another stack for it; `None`: nothing (a table has a
    /// fixed name, AppConfig none).
    pub fn from_stack(&self) -> Option<FromStack> {
        let (parameter, stack, output, workflow, env, kind) = match self {
            Self::Bucket {
                parameter,
                output,
                env,
                stack,
                workflow,
            } => (parameter, stack, output, workflow, env, "bucket"),
            Self::Distribution {
                parameter,
                output,
                env,
                stack,
                workflow,
            } => (parameter, stack, output, workflow, env, "distribution"),
            Self::StackValue {
                parameter,
                output,
                env,
                stack,
                workflow,
            } => (parameter, stack, output, workflow, env, "domain"),
            Self::UserPool {
                parameter,
                output,
                env,
                stack,
                workflow,
            } => (parameter, stack, output, workflow, env, "userpool"),
            Self::DynamoTable { .. }
            | Self::AppConfig
            | Self::AppConfigApplications
            | Self::Functions
            | Self::Setting { .. } => return None,
        };
        Some(FromStack {
            parameter,
            stack,
            output,
            workflow,
            env,
            kind,
        })
    }
}

/// The bucket-level S3 actions (granted on the bucket's ARN; every other S3 action is
/// granted on its objects, `bucket/*`).
pub const BUCKET_LEVEL_ACTIONS: &[&str] = &["s3:ListBucket", "s3:ListBucketVersions"];

/// Actions a route needs on one resource; its function's role grants exactly these.
#[derive(Debug, Clone, Copy)]
pub struct Use {
    pub resource: &'static Resource,
    pub actions: &'static [&'static str],
    /// A bucket's keys its object actions are limited to (`processed/*`), as FireFly's
    /// templates limit some functions; empty: every key of the bucket.
    pub objects: &'static [&'static str],
}

/// The resource a route lists in its `uses` when it reads settings.
pub const APPCONFIG: Resource = Resource::AppConfig;

/// What reading settings through the extension needs the role to grant (on `*`: the
/// extension starts a configuration session for whatever profile the function names).
pub const APPCONFIG_ACTIONS: &[&str] = &[
    "appconfig:StartConfigurationSession",
    "appconfig:GetLatestConfiguration",
];

/// What a route lists in its `uses` to read its settings and log level: AppConfig, with
/// the two read actions.
pub const READS_APPCONFIG: Use = Use {
    resource: &APPCONFIG,
    actions: APPCONFIG_ACTIONS,
    objects: &[],
};

/// The environment a function that reads settings gets, as template expressions: FireFly's
/// `APP_CONFIG_ENV`. The AppConfig application is the function's own name and the profile
/// `features`, as FireFly's console manages them ([`crate::config`]).
pub const TEMPLATE_ENV: [(&str, &str); 1] = [("APP_CONFIG_ENV", "!Ref AppConfigEnvironment")];

/// The function's environment, as a look-up: the process's real one, or a test's.
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// What invokes a function: declared by each entry of the table (through the macro that
/// makes its [`Endpoint`]), never guessed from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// API Gateway: the entry's `key` is its route key, `METHOD /path`.
    Api,
    /// S3 notifications of a bucket: the entry's `key` names it in logs and metrics.
    S3(S3Notification),
    /// A user pool's trigger: the entry's `key` names it in logs and metrics.
    Cognito(CognitoTrigger),
}

/// The trigger of a user pool that invokes a Cognito function: FireFly's pool stack owns
/// its `LambdaConfig`; the function's stack grants Cognito the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CognitoTrigger {
    /// The pool: one of the entry's `uses`.
    pub pool: &'static Resource,
    /// Its key in the pool's `LambdaConfig` (`PreSignUp`).
    pub config: &'static str,
    /// How long Cognito waits for an answer (5 s for every trigger).
    pub limit_ms: u64,
}

/// The notification of a bucket that invokes an S3 function: FireFly's bucket stack owns
/// it (docs/deploying.md); the function's stack grants S3 the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Notification {
    /// The bucket: one of the entry's `uses`.
    pub bucket: &'static Resource,
    /// `s3:ObjectCreated:*`, `s3:ObjectRemoved:*`.
    pub events: &'static [&'static str],
    /// Keys under any of these prefixes...
    pub prefixes: &'static [&'static str],
    /// ...that end with this.
    pub suffix: &'static str,
}

impl S3Notification {
    /// Whether an event of `event` (`ObjectCreated:Put`) on `key` is one of these.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        let event = event.strip_prefix("s3:").unwrap_or(event);
        self.events.iter().any(|e| {
            let e = e.strip_prefix("s3:").unwrap_or(e);
            match e.strip_suffix('*') {
                Some(family) => event.starts_with(family),
                None => event == e,
            }
        }) && self.prefixes.iter().any(|p| key.starts_with(p))
            && key.ends_with(self.suffix)
    }
}
