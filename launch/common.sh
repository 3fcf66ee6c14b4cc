# Helpers the launch recipes share; sourced, not run. The sourcing script sets
# SHORT_USAGE (its one-line usage) first; messages are prefixed with its name.
# shellcheck shell=bash

LAUNCHER="launch/$(basename "$0")"

# The script's header comment (after the shebang), as --help prints it.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() {
  printf '%s: %s\n' "$LAUNCHER" "$1" >&2
  printf 'usage: %s  (--help for more)\n' "$SHORT_USAGE" >&2
  exit 2
}
fail() { printf '%s: %s\n' "$LAUNCHER" "$1" >&2; exit 1; }
# Single-quotes a word for a POSIX shell unless it is made of safe characters only
# (`--flag=value` keeps `--flag=` outside the quotes).
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
    printf '%s' "$1"
  elif [[ $1 =~ ^(--[A-Za-z0-9_.-]+=)(.*)$ ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
    quote "${BASH_REMATCH[2]}"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}
quote_words() {
  local sep="" word
  for word in "$@"; do
    printf '%s%s' "$sep" "$(quote "$word")"
    sep=" "
  done
}
positive_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"; }
no_newline() { [[ $2 != *$'\n'* ]] || die "$1 must be one line"; }
