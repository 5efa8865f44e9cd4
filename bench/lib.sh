# Shared by the bench scripts (sourced from the repository root): installs Debian's Redis
# when missing, builds the release binary, finds free ports, and cleans up on exit.

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "installing redis-server and redis-tools (Debian)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
cargo build --release -q -p ferrocache
BIN=target/release/ferrocache

free_run() { # a base port with $1 free consecutive ports
  python3 - "$1" <<'PY'
import socket, sys, random
n = int(sys.argv[1])
while True:
    base = random.randint(20000, 50000)
    socks = []
    try:
        for i in range(n):
            s = socket.socket(); s.bind(("127.0.0.1", base + i)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
