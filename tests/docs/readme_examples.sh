#!/bin/sh
# The README's examples print what the README says they print.
#   readme_examples.sh FLOODGATE_BIN README.md
set -u
bin=$1
readme=$2
fail=0

# "echo "Hello world" | floodgate tokens count --model gpt-4o   # N ..."
want=$(sed -n 's/^echo "Hello world" | floodgate tokens count --model gpt-4o *# *\([0-9][0-9]*\).*/\1/p' "$readme")
got=$(echo "Hello world" | "$bin" tokens count --model gpt-4o)
if [ -z "$want" ] || [ "$want" != "$got" ]; then
  echo "README says the token count of 'Hello world' + newline is '$want'; floodgate prints '$got'"
  fail=1
fi

# The tables example's estimate names the limit that bounds the run.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'id,text\n1,great\n2,bad\n' >"$dir/reviews.csv"
printf 'Rate: {text}\n' >"$dir/prompt.txt"
printf '{"type":"object","properties":{"label":{"type":"string"}}}' >"$dir/schema.json"
cmd=$(sed -n '/^floodgate estimate reviews.csv/{N;s/\\\n *//;p;}' "$readme")
if [ -z "$cmd" ]; then
  echo "README has no 'floodgate estimate reviews.csv' example"
  fail=1
else
  out=$(cd "$dir" && eval "\"$bin\" ${cmd#floodgate }" 2>&1)
  case "$out" in
    *"minimum time at these limits:"*"(set by "*) ;;
    *) echo "the README's estimate example does not say what bounds the run:"; echo "$out"; fail=1 ;;
  esac
fi
# The Batch section's cost comparison is what `floodgate estimate` prints for examples/chat.jsonl.
root=$(dirname "$readme")
for line in "$(grep '^cost (USD, prices as of' "$readme")" "$(grep '^cost with `floodgate batch`' "$readme")"; do
  if [ -z "$line" ] || ! "$bin" estimate "$root/examples/chat.jsonl" 2>&1 | grep -qxF "$line"; then
    echo "the README's estimate line '$line' is not what floodgate estimate prints for examples/chat.jsonl"
    fail=1
  fi
done
exit $fail
