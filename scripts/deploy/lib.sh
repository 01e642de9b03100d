# shellcheck shell=bash
# Shared by the deploy and delete scripts. Source it; do not run it.

# shellcheck disable=SC2034  # used by the scripts that source this file
STACK=firefly-func-api-registration-keys-post
# shellcheck disable=SC2034
LOG_GROUP=/aws/lambda/firefly-func-api-registration-keys-post

# Prints an error for GitHub Actions (an annotation) and for people, then exits. On
# stderr: look-ups run inside $(...), whose stdout is the value, not the message.
die() {
  printf '::error::%s\n' "$1" >&2
  exit 1
}

warn() {
  printf '::warning::%s\n' "$1" >&2
}

# stack_output STACK KEY WORKFLOW: prints the output KEY of STACK, or stops the run with a
# message naming the workflow to deploy first. An empty value or "None" (what the CLI prints
# for a missing output) is not a value.
stack_output() {
  local stack=$1 key=$2 workflow=$3 value
  if ! value=$(aws cloudformation describe-stacks --stack-name "$stack" \
      --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue | [0]" --output text 2>&1); then
    if [[ $value == *"does not exist"* ]]; then
      die "stack $stack not found: deploy $workflow first (looking up its output $key)"
    fi
    die "could not read stack $stack for its output $key: $value"
  fi
  if [[ -z $value || $value == None || $value == null ]]; then
    die "stack $stack has no output $key: redeploy $workflow (it must export $key)"
  fi
  printf '%s\n' "$value"
}

# stack_exists STACK: true when CloudFormation knows STACK.
stack_exists() {
  aws cloudformation describe-stacks --stack-name "$1" >/dev/null 2>&1
}

