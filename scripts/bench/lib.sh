# Sourced by the benchmark scripts: timing, medians, and a pipeline.toml
# whose state lives under one work directory.

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_config DIR [SOURCE]: [paths] under DIR/var and, with SOURCE, a
# stream "bench" backing it up. Append other sections to the file after.
bench_config() {
  cat <<TOML
[paths]
spool = "$1/var/spool"
cache = "$1/var/cache"
catalog = "$1/var/catalog"
log = "$1/var/log"
TOML
  if [ -n "${2:-}" ]; then
    printf '\n[[stream]]\nname = "bench"\nsource = "%s"\n' "$2"
  fi
}
