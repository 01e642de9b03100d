//! `template.yaml`: every function's stack resources in one SAM template.
//!
//! Each function's resources carry the condition "this stack is that function's stack", so
//! deploying the template as stack `firefly-func-api-<name>` creates exactly that
//! function's log group, role, function, integration, routes and permissions. One template
//! means one `sam build`, one artifact: every function ships the same `bootstrap`.

use super::{Function, HEADER, iam_statements, pascal};
use crate::deploy::Resource;
use crate::handler::Auth;
use crate::route::{Kind, MetricAlarm};
use std::fmt::Write;

/// Settings every function shares (README, Cold start: the measurements behind them);
/// memory and timeout are its kind's ([`crate::route::Kind`]).
const LOG_RETENTION_DAYS: u32 = 30;

/// The environment every function gets, whatever its routes: telemetry's.
const FUNCTION_ENV: [(&str, &str); 1] = [("FIREFLY_METRICS_NAMESPACE", "!Ref MetricsNamespace")];

/// Alarm thresholds (README, Alarms): a route's 5xx rate over 5 minutes, once it has had
/// at least 20 requests in them; any throttle; p99 duration past 80% of the timeout.
const ERROR_RATE_PERCENT: u32 = 5;
const ERROR_RATE_MIN_REQUESTS: u32 = 20;
const fn duration_alarm_ms(timeout_s: u32) -> u32 {
    timeout_s * 1000 * 8 / 10
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A template value: `!Ref`/`!Sub`/`!GetAtt` expressions pass through, the rest is quoted.
fn v(s: &str) -> String {
    if s.starts_with('!') {
        match s.split_once(' ') {
            Some((tag, rest)) => format!("{tag} {}", q(rest)),
            None => s.to_owned(),
        }
    } else {
        q(s)
    }
}

/// `DELETE /registration-keys/{registrationKey}` → `DELETE/registration-keys/*`: the part
/// of the execute-api ARN that API Gateway invokes a route with (path parameters are `*`).
fn arn_route(key: &str) -> String {
    let (method, path) = key.split_once(' ').unwrap_or((key, ""));
    let path: Vec<&str> = path
        .split('/')
        .map(|seg| if seg.starts_with('{') { "*" } else { seg })
        .collect();
    format!("{method}{}", path.join("/"))
}

pub fn render(functions: &[Function<'_>]) -> Result<String, String> {
    let mut t = String::new();
    let names: Vec<&str> = functions.iter().map(|f| f.name).collect();
    // Writing to a String cannot fail.
    let _ = write!(
        t,
        r#"# {HEADER}
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: >-
  Firefly API functions, one artifact. Deploy as stack firefly-func-api-<name> to create
  that function's resources only (scripts/deploy/deploy <function>). Functions:
  {}.

Parameters:
  ApiId:
    Type: String
    Default: ""
    AllowedPattern: "^([a-z0-9]{{10}})?$"
    Description: The Firefly HTTP API (output ApiId of the firefly-api-gateway stack); every API function needs it, the functions S3 invokes take none.
  AuthorizerId:
    Type: String
    Default: ""
    AllowedPattern: "^([a-z0-9]{{6,10}})?$"
    Description: Its Cognito JWT authorizer (output AuthorizerId of the firefly-api-gateway stack); only functions with a JWT route take it.
  SharedLayerArn:
    Type: String
    AllowedPattern: "^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{{12}}:layer:[A-Za-z0-9_-]+:[0-9]+$"
    Description: Firefly's shared layer (output SharedLayerArn of the firefly-shared-layer stack).
  AppConfigExtensionLayerArn:
    Type: String
    AllowedPattern: "^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{{12}}:layer:[A-Za-z0-9_-]+:[0-9]+$"
    Description: The AWS AppConfig Lambda extension (output AppConfigExtensionLayerArn of firefly-shared-layer).
  AppConfigEnvironment:
    Type: String
    Default: default
    AllowedPattern: "^[A-Za-z0-9._-]+$"
    Description: FireFly's APP_CONFIG_ENV (each function's AppConfig application is its own name).
  MetricsNamespace:
    Type: String
    Default: {namespace}
    AllowedPattern: "^[A-Za-z0-9.\\-_/#][A-Za-z0-9.\\-_/#:]{{0,254}}$"
    Description: CloudWatch namespace of the functions' EMF metrics.
  ActiveTracing:
    Type: String
    Default: "false"
    AllowedValues: ["true", "false"]
    Description: X-Ray active tracing; "true" also grants the role xray:PutTraceSegments and xray:PutTelemetryRecords.
  Alarms:
    Type: String
    Default: "false"
    AllowedValues: ["true", "false"]
    Description: CloudWatch alarms per function and route (README, Alarms).
  AlarmTopicArn:
    Type: String
    Default: ""
    Description: An SNS topic for alarm and OK notifications (empty for none).
  AppConfigReadArn:
    Type: String
    Default: ""
    AllowedPattern: "^(arn:aws[a-z-]*:appconfig:[a-z0-9-]+:[0-9]{{12}}:application/[A-Za-z0-9*/_.-]+)?$"
    Description: Narrows the AppConfig read grant, which is every configuration when empty (FireFly's console creates each application at run time); e.g. arn:aws:appconfig:REGION:ACCOUNT:application/APP_ID/environment/ENV_ID/configuration/* once the IDs exist (docs/security.md, AppConfig read access).
  ReservedConcurrency:
    Type: Number
    Default: -1
    MinValue: -1
    Description: The function's reserved concurrency (its ceiling, which bounds how fast registration keys can be guessed); -1 for none.

Conditions:
  TracingOn: !Equals [!Ref ActiveTracing, "true"]
  HasReservedConcurrency: !Not [!Equals [!Ref ReservedConcurrency, -1]]
  HasAppConfigReadArn: !Not [!Equals [!Ref AppConfigReadArn, ""]]
  AlarmsOn: !Equals [!Ref Alarms, "true"]
  HasAlarmTopic: !Not [!Equals [!Ref AlarmTopicArn, ""]]
"#,
        names.join(", "),
        namespace = crate::telemetry::DEFAULT_NAMESPACE,
    );
    // Each bucket or distribution a function uses is named by a parameter the deploy fills
    // from its stack's output (empty by default: the functions without one take none).
    let mut buckets = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in functions.iter().flat_map(Function::from_stacks) {
        if !seen.contains(&r.parameter) {
            seen.push(r.parameter);
            // A bucket name's rules; a distribution ID is CloudFront's upper-case letters and
            // digits.
            let pattern = match r.kind {
                "bucket" => "^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$",
                "domain" => "^([a-z0-9][a-z0-9.-]{0,251}[a-z0-9])?$",
                _ => "^([A-Z0-9]{1,32})?$",
            };
            let _ = write!(
                buckets,
                "  {}:\n    Type: String\n    Default: \"\"\n    AllowedPattern: \"{pattern}\"\n    Description: {}\n",
                r.parameter,
                q(&format!(
                    "The {} FireFly's {} stack makes (its output {}, which scripts/deploy/resolve reads); only the functions that use it need it.",
                    r.kind, r.stack, r.output
                ))
            );
        }
    }
    let mut settings: Vec<&Resource> = Vec::new();
    for r in functions.iter().flat_map(Function::settings) {
        if let Resource::Setting {
            parameter,
            env,
            allowed,
            default,
        } = r
            && !settings.contains(&r)
        {
            settings.push(r);
            let _ = write!(
                buckets,
                "  {parameter}:\n    Type: String\n    Default: {default}\n    AllowedValues: [{}]\n    Description: {}\n",
                allowed.join(", "),
                q(&format!(
                    "The deployment's {env} (scripts/deploy/resolve passes the deploying job's {env} when it is set); only the functions that read it need it."
                ))
            );
        }
    }
    if let Some(at) = t.find("\nConditions:\n").filter(|_| !buckets.is_empty()) {
        t.insert_str(at, &buckets);
    }
    for f in functions {
        let l = f.logical();
        let _ = writeln!(
            t,
            "  Is{l}: !Equals [!Ref \"AWS::StackName\", {}]\n  {l}Alarms: !And [!Condition Is{l}, !Condition AlarmsOn]",
            q(f.name)
        );
    }
    t.push_str("\nResources:\n");
    for f in functions {
        resources(&mut t, f)?;
    }
    t.push_str("Outputs:\n");
    for f in functions {
        let l = f.logical();
        let api = f.kind() == Kind::Api;
        for (name, value) in [
            ("FunctionName", format!("!Ref {l}Function")),
            ("FunctionArn", format!("!GetAtt {l}Function.Arn")),
            ("RoleArn", format!("!GetAtt {l}Role.Arn")),
            ("IntegrationId", format!("!Ref {l}Integration")),
            ("LogGroupName", format!("!Ref {l}LogGroup")),
        ] {
            if name == "IntegrationId" && !api {
                continue;
            }
            let _ = write!(
                t,
                "  {l}{name}:\n    Condition: Is{l}\n    Value: {value}\n"
            );
            // The bucket stack's notification names the function by this export
            // (docs/deploying.md, "Functions S3 invokes").
            if name == "FunctionArn" && !api {
                let _ = writeln!(
                    t,
                    "    Export:\n      Name: {}",
                    q(&format!("{}-arn", f.name))
                );
            }
        }
    }
    Ok(t)
}

fn resources(t: &mut String, f: &Function<'_>) -> Result<(), String> {
    let l = f.logical();
    let keys: Vec<&str> = f.routes.iter().map(|r| r.key).collect();
    let _ = write!(
        t,
        r#"  # {name}: {keys}
  {l}LogGroup:
    Type: AWS::Logs::LogGroup
    Condition: Is{l}
    DeletionPolicy: Delete
    UpdateReplacePolicy: Delete
    Properties:
      LogGroupName: {log_group}
      RetentionInDays: {LOG_RETENTION_DAYS}

  {l}Role:
    Type: AWS::IAM::Role
    Condition: Is{l}{lint}
    Properties:
      RoleName: {role}
      Description: {role_description}
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal:
              Service: lambda.amazonaws.com
            Action: sts:AssumeRole
      # No managed policies: AWSLambdaBasicExecutionRole would add logs:CreateLogGroup on "*".
      Policies:
        - PolicyName: {short}
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
"#,
        name = f.name,
        keys = keys.join(", "),
        log_group = q(&f.log_group()),
        role = q(&f.role()),
        role_description = q(&format!(
            "Execution role of {}: exactly what its routes use (src/routes.rs).",
            f.name
        )),
        short = q(f.short()),
        // A bucket's ARN is built from a parameter that is empty until the deploy names the
        // bucket (scripts/deploy/resolve): cfn-lint would judge the empty default's ARN.
        lint = if f.from_stacks().is_empty() {
            ""
        } else {
            "\n    Metadata:\n      cfn-lint:\n        config:\n          ignore_checks: [W1031]"
        },
    );
    for (resource, actions, objects) in f.scoped_grants() {
        let sid = match resource {
            Resource::DynamoTable { name, .. } => format!("{}Table", pascal(name)),
            Resource::Bucket { parameter, .. }
            | Resource::Distribution { parameter, .. }
            | Resource::StackValue { parameter, .. }
            | Resource::Setting { parameter, .. }
            | Resource::UserPool { parameter, .. } => parameter.to_string(),
            Resource::AppConfig => "ReadAppConfig".into(),
            Resource::AppConfigApplications => "ManageAppConfig".into(),
            Resource::Functions => "FireflyFunctions".into(),
        };
        let statements = iam_statements(resource, &actions, &objects);
        let several = statements.len() > 1;
        for (arns, actions) in statements {
            let sid = match (several, arns.iter().any(|a| a.ends_with("/*"))) {
                (true, true) => format!("{sid}Objects"),
                (true, false) if arns.iter().any(|a| a == "*") => format!("{sid}List"),
                _ => sid.clone(),
            };
            let _ = writeln!(
                t,
                "              - Sid: {sid}\n                Effect: Allow\n                Action:"
            );
            for a in actions {
                let _ = writeln!(t, "                  - {a}");
            }
            // AppConfig's IDs do not exist when the stack deploys: `*` unless the operator
            // narrows it (the AppConfigReadArn parameter).
            let target = |arn: &String| match resource {
                Resource::AppConfig => {
                    "!If [HasAppConfigReadArn, !Ref AppConfigReadArn, \"*\"]".to_owned()
                }
                _ => v(arn),
            };
            match arns.as_slice() {
                [one] => {
                    let _ = writeln!(t, "                Resource: {}", target(one));
                }
                many => {
                    let _ = writeln!(t, "                Resource:");
                    for arn in many {
                        let _ = writeln!(t, "                  - {}", target(arn));
                    }
                }
            }
        }
    }
    // X-Ray writes only with active tracing on (the ActiveTracing parameter).
    t.push_str(
        "              - !If\n                - TracingOn\n                - Sid: WriteTraces\n                  Effect: Allow\n                  Action:\n                    - xray:PutTraceSegments\n                    - xray:PutTelemetryRecords\n                  Resource: \"*\"\n                - !Ref AWS::NoValue\n",
    );
    let _ = write!(
        t,
        r#"              - Sid: WriteOwnLogs
                Effect: Allow
                Action:
                  - logs:CreateLogStream
                  - logs:PutLogEvents
                Resource: !GetAtt {l}LogGroup.Arn

  {l}Function:
    Type: AWS::Serverless::Function
    Condition: Is{l}
    # Every function has the same CodeUri and Metadata, so `sam build` builds bootstrap
    # once and every function ships that artifact.
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: bootstrap
    Properties:
      FunctionName: {name}
      Description: {description}
      CodeUri: .
      Handler: bootstrap
      Runtime: provided.al2023
      Architectures:
        - arm64
{sizing}
      Role: !GetAtt {l}Role.Arn
      ReservedConcurrentExecutions: !If [HasReservedConcurrency, !Ref ReservedConcurrency, !Ref AWS::NoValue]
      Tracing: !If [TracingOn, Active, PassThrough]
      Layers:
        - !Ref SharedLayerArn
        - !Ref AppConfigExtensionLayerArn
      # No ApplicationLogLevel: FireFly's console sets each function's level in its
      # AppConfig `logging` profile, and Lambda must not filter below it.
      LoggingConfig:
        LogFormat: JSON
        LogGroup: !Ref {l}LogGroup
        SystemLogLevel: WARN
"#,
        name = q(f.name),
        description = q(&format!("{} (Firefly API monolith)", keys.join(", "))),
        sizing = match f.kind() {
            Kind::Api if f.timeout_s() != Kind::Api.timeout_s() => format!(
                "      # 256 MB, as every API function; FireFly's {timeout} s: its work (a release writes\n      # every file of a firmware) outlasts API Gateway's 30 s, and it completes or undoes\n      # that work whether or not anyone still waits for the answer.\n      MemorySize: {}\n      Timeout: {timeout}",
                Kind::Api.memory_mb(),
                timeout = f.timeout_s()
            ),
            Kind::Api => format!(
                "      # 256 MB: the binary needs under 10 MB of memory, but Lambda sizes CPU by memory, and\n      # init plus the first TLS handshake are CPU-bound.\n      MemorySize: {}\n      # 6 s: the DynamoDB client gives up after 3 s (three attempts) and AppConfig after\n      # 250 ms, so a healthy invoke never nears it and a stuck one still answers 503.\n      Timeout: {}",
                Kind::Api.memory_mb(),
                Kind::Api.timeout_s()
            ),
            Kind::Cognito => format!(
                "      # FireFly's 128 MB and 5 s: Cognito waits 5 s for a trigger, and one read of the\n      # invitations table is all the work.\n      MemorySize: {}\n      Timeout: {}",
                Kind::Cognito.memory_mb(),
                Kind::Cognito.timeout_s()
            ),
            Kind::S3 => format!(
                "      # FireFly's 128 MB and 30 s: a 4 MiB firmware ZIP is checked in a fraction of\n      # both (docs/performance.md, \"Firmware ingest\").\n      MemorySize: {}\n      Timeout: {}",
                Kind::S3.memory_mb(),
                Kind::S3.timeout_s()
            ),
        },
    );
    let env = f.env()?;
    t.push_str("      Environment:\n        Variables:\n");
    for (k, value) in env
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(FUNCTION_ENV)
    {
        let _ = writeln!(t, "          {k}: {}", v(value));
    }
    if let Some(n) = f.s3_notification() {
        s3_permission(t, f, &n);
        function_alarms(t, f);
        t.push('\n');
        return Ok(());
    }
    if let Some(c) = f.cognito_trigger() {
        cognito_permission(t, f, &c);
        function_alarms(t, f);
        t.push('\n');
        return Ok(());
    }
    let _ = write!(
        t,
        r#"
  {l}Integration:
    Type: AWS::ApiGatewayV2::Integration
    Condition: Is{l}
    Properties:
      ApiId: !Ref ApiId
      Description: {name}
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt {l}Function.Arn
      PayloadFormatVersion: "2.0"
"#,
        name = q(f.name),
    );
    for r in &f.routes {
        let rl = pascal(&r.slug());
        let _ = write!(
            t,
            r#"
  {rl}Route:
    Type: AWS::ApiGatewayV2::Route
    Condition: Is{l}
    Properties:
      ApiId: !Ref ApiId
      RouteKey: {key}
      AuthorizationType: {auth}
"#,
            key = q(r.key),
            auth = r.auth().as_str(),
        );
        if r.auth() == Auth::Jwt {
            t.push_str("      AuthorizerId: !Ref AuthorizerId\n");
            if !r.scopes.is_empty() {
                t.push_str("      AuthorizationScopes:\n");
                for scope in r.scopes {
                    let _ = writeln!(t, "        - {}", q(scope));
                }
            }
        }
        let _ = write!(
            t,
            r#"      Target: !Sub integrations/${{{l}Integration}}

  {rl}Permission:
    Type: AWS::Lambda::Permission
    Condition: Is{l}
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref {l}Function
      Principal: apigateway.amazonaws.com
      SourceArn: !Sub "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{ApiId}}/*/{arn}"
"#,
            arn = arn_route(r.key),
        );
        route_alarm(t, f, &rl, r.key, &r.slug());
        for alarm in r.alarms {
            metric_alarm(t, f, &rl, r.key, alarm);
        }
    }
    function_alarms(t, f);
    t.push('\n');
    Ok(())
}

/// S3's permission to invoke an S3 function: from its bucket only (`SourceArn`), in this
/// account only (`SourceAccount`: a bucket name can move to another account). The
/// notification itself is the bucket stack's (FireFly's `s3-firmware.yaml`).
fn s3_permission(t: &mut String, f: &Function<'_>, n: &crate::route::S3Notification) {
    let l = f.logical();
    let parameter = match n.bucket {
        Resource::Bucket { parameter, .. } => *parameter,
        _ => "",
    };
    let _ = write!(
        t,
        r#"
  {l}S3Permission:
    Type: AWS::Lambda::Permission
    Condition: Is{l}
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref {l}Function
      Principal: s3.amazonaws.com
      SourceArn: !Sub "arn:${{AWS::Partition}}:s3:::${{{parameter}}}"
      SourceAccount: !Ref AWS::AccountId
"#
    );
}

/// Cognito's permission to invoke a trigger of the pool (the pool stack's `LambdaConfig`
/// names the function; FireFly's pool stack also grants one, without `SourceAccount`).
fn cognito_permission(t: &mut String, f: &Function<'_>, c: &crate::deploy::CognitoTrigger) {
    let l = f.logical();
    let parameter = match c.pool {
        Resource::UserPool { parameter, .. } => *parameter,
        _ => "",
    };
    let _ = write!(
        t,
        r#"
  {l}CognitoPermission:
    Type: AWS::Lambda::Permission
    Condition: Is{l}
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref {l}Function
      Principal: cognito-idp.amazonaws.com
      SourceArn: !Sub "arn:${{AWS::Partition}}:cognito-idp:${{AWS::Region}}:${{AWS::AccountId}}:userpool/${{{parameter}}}"
      SourceAccount: !Ref AWS::AccountId
"#
    );
}

const ALARM_ACTIONS: &str = "      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n      OKActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]\n";

/// A route's 5xx rate, from its own EMF metrics.
fn route_alarm(t: &mut String, f: &Function<'_>, rl: &str, key: &str, slug: &str) {
    let l = f.logical();
    let metric = |id: &str, name: &str| {
        format!(
            "        - Id: {id}\n          ReturnData: false\n          MetricStat:\n            Period: 300\n            Stat: Sum\n            Metric:\n              Namespace: !Ref MetricsNamespace\n              MetricName: {name}\n              Dimensions:\n                - Name: function\n                  Value: {}\n                - Name: route\n                  Value: {}\n",
            q(f.name),
            q(key)
        )
    };
    let _ = write!(
        t,
        r#"
  {rl}Errors5xxAlarm:
    Type: AWS::CloudWatch::Alarm
    Condition: {l}Alarms
    Properties:
      AlarmName: {name}
      AlarmDescription: {description}
      Metrics:
{errors}{requests}        - Id: rate
          Label: 5xx rate (%)
          Expression: "IF(requests >= {ERROR_RATE_MIN_REQUESTS}, 100 * errors / requests, 0)"
          ReturnData: true
      ComparisonOperator: GreaterThanThreshold
      Threshold: {ERROR_RATE_PERCENT}
      EvaluationPeriods: 2
      DatapointsToAlarm: 2
      TreatMissingData: notBreaching
{ALARM_ACTIONS}"#,
        name = q(&format!("{}-{slug}-5xx-rate", f.name)),
        description = q(&format!(
            "{key}: more than {ERROR_RATE_PERCENT}% of requests answered 5xx in two 5-minute periods in a row (periods with at least {ERROR_RATE_MIN_REQUESTS} requests)"
        )),
        errors = metric("errors", "Errors5xx"),
        requests = metric("requests", "Requests"),
    );
}

/// An alarm on one of a route's own metrics (its 5-minute sum above a threshold).
fn metric_alarm(t: &mut String, f: &Function<'_>, rl: &str, key: &str, alarm: &MetricAlarm) {
    let l = f.logical();
    let _ = write!(
        t,
        r#"
  {rl}{metric}Alarm:
    Type: AWS::CloudWatch::Alarm
    Condition: {l}Alarms
    Properties:
      AlarmName: {name}
      AlarmDescription: {description}
      Namespace: !Ref MetricsNamespace
      MetricName: {metric}
      Dimensions:
        - Name: function
          Value: {function}
        - Name: route
          Value: {route}
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: {threshold}
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
{ALARM_ACTIONS}"#,
        metric = alarm.metric,
        name = q(&format!("{}-{}", f.name, alarm.metric)),
        description = q(alarm.description),
        function = q(f.name),
        route = q(key),
        threshold = alarm.threshold,
    );
}

/// Lambda's own metrics of the function: throttles, and duration near the timeout.
fn function_alarms(t: &mut String, f: &Function<'_>) {
    let l = f.logical();
    let _ = write!(
        t,
        r#"
  {l}ThrottlesAlarm:
    Type: AWS::CloudWatch::Alarm
    Condition: {l}Alarms
    Properties:
      AlarmName: {throttles}
      AlarmDescription: "Lambda throttled an invocation of {name} (concurrency exhausted): callers got 429/503 from API Gateway."
      Namespace: AWS/Lambda
      MetricName: Throttles
      Dimensions:
        - Name: FunctionName
          Value: !Ref {l}Function
      Statistic: Sum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
      TreatMissingData: notBreaching
{ALARM_ACTIONS}
  {l}DurationAlarm:
    Type: AWS::CloudWatch::Alarm
    Condition: {l}Alarms
    Properties:
      AlarmName: {duration}
      AlarmDescription: "p99 duration of {name} above {threshold_ms} ms (80% of its {timeout_s} s timeout) in 2 of 3 five-minute periods."
      Namespace: AWS/Lambda
      MetricName: Duration
      Dimensions:
        - Name: FunctionName
          Value: !Ref {l}Function
      ExtendedStatistic: p99
      Period: 300
      EvaluationPeriods: 3
      DatapointsToAlarm: 2
      Threshold: {threshold_ms}
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
{ALARM_ACTIONS}"#,
        name = f.name,
        throttles = q(&format!("{}-throttles", f.name)),
        duration = q(&format!("{}-duration-near-timeout", f.name)),
        threshold_ms = duration_alarm_ms(f.timeout_s()),
        timeout_s = f.timeout_s(),
    );
    if f.kind() == Kind::S3 {
        // Nobody sees an S3 function fail but this alarm: Lambda retries twice, then drops
        // the event.
        let _ = write!(
            t,
            r#"
  {l}ErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Condition: {l}Alarms
    Properties:
      AlarmName: {errors}
      AlarmDescription: "{name} failed an invocation (Lambda retries it twice, then drops the event)."
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions:
        - Name: FunctionName
          Value: !Ref {l}Function
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanOrEqualToThreshold
      TreatMissingData: notBreaching
{ALARM_ACTIONS}"#,
            name = f.name,
            errors = q(&format!("{}-errors", f.name)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_api_arns_put_stars_for_path_parameters() {
        assert_eq!(
            arn_route("POST /registration-keys"),
            "POST/registration-keys"
        );
        assert_eq!(
            arn_route("DELETE /registration-keys/{registrationKey}"),
            "DELETE/registration-keys/*"
        );
        assert_eq!(arn_route("GET /files/{proxy+}"), "GET/files/*");
    }

    #[test]
    fn values_pass_tags_through_and_quote_the_rest() {
        assert_eq!(
            v("!Ref AppConfigEnvironment"),
            "!Ref \"AppConfigEnvironment\""
        );
        assert_eq!(v("*"), "\"*\"");
        assert_eq!(v("a \"b\""), r#""a \"b\"""#);
    }
}
