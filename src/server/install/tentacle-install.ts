import type { InstallCarrier, InstallOptions } from '../../api/contract.js';
import { ReefError } from '../../errors.js';
import type { MachineKind } from '../store/types.js';
import { DOWNLOADS_PATH, INSTALL_SCRIPT } from '../downloads/names.js';

/**
 * "Add machine": the one line an administrator pastes on a Linux machine to install a
 * Tentacle from this server and register it with a join token, and the script that line
 * runs. The portal page and `reef tokens create --print-install` both get the line from
 * POST /api/tokens, which builds it here; the script is served at
 * /downloads/install-tentacle.sh.
 *
 * Trust: the line fetches the script with `curl --pinnedpubkey` (the server's public key,
 * so no CA is needed and an impostor is refused before anything is sent, see
 * downloads/commands.ts), and the script fetches the Tentacle the same way and checks it
 * against SHA256SUMS from the same pinned server. Then the Tentacle pins the portal
 * certificate by thumbprint and, from the registration's answer, the comms certificate.
 * Nothing is fetched from anywhere else.
 */

export interface InstallCommandInput extends InstallOptions {
  /** https://host[:port] as machines reach the server. */
  serverUrl: string;
  /** `sha256//...` of the HTTPS certificate's public key. */
  publicKeyPin: string;
  /** SHA-256 thumbprint of the HTTPS certificate, which the Tentacle pins for REST. */
  portalThumbprint: string;
  /** The server's WebSocket path (`/reef/comms` unless configured). */
  websocketPath: string;
  kind: MachineKind;
}

/** `'text'` for sh, whatever the text holds. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function origin(url: string, what: string, protocols: readonly string[]): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ReefError('REEF_INVALID_ARGUMENT', `${what} "${url}" is not a URL.`);
  }
  if (!protocols.includes(parsed.protocol)) throw new ReefError('REEF_INVALID_ARGUMENT', `${what} must start with ${protocols.join(' or ')} (got "${url}").`);
  return parsed;
}

/** The --server-comms-address or --server-web-socket the Tentacle is given, or none for the comms port. */
export function carrierAddress(carrier: InstallCarrier, serverUrl: string, websocketPath: string, commsAddress: string | undefined): string | undefined {
  if (carrier === 'comms-port') {
    if (commsAddress !== undefined) throw new ReefError('REEF_INVALID_ARGUMENT', 'A comms address goes with the https or websocket carrier, not comms-port.');
    return undefined;
  }
  if (carrier === 'https') return origin(commsAddress ?? serverUrl, 'The comms address', ['https:']).origin;
  if (commsAddress !== undefined) return origin(commsAddress, 'The WebSocket URL', ['wss:']).href;
  const base = new URL(serverUrl);
  return `wss://${base.host}${websocketPath.startsWith('/') ? websocketPath : `/${websocketPath}`}`;
}

/**
 * Checks the options and returns what makes the line to run as root on the machine for a
 * token: checked before the token is made, so a bad option leaves no token behind.
 */
export function installCommand(input: InstallCommandInput): (token: string) => string {
  const server = origin(input.serverUrl, 'The server URL', ['https:']).origin;
  const proxy = input.proxy !== undefined ? origin(input.proxy, 'The proxy', ['http:']).href.replace(/\/$/, '') : undefined;
  const address = carrierAddress(input.carrier, server, input.websocketPath, input.commsAddress);
  const pin = shellQuote(input.publicKeyPin);
  const args = [
    '--server', server,
    '--pin', input.publicKeyPin,
    '--thumbprint', input.portalThumbprint,
    '--kind', input.kind,
    ...(address !== undefined ? ['--carrier', input.carrier, '--comms-address', address] : []),
    ...(proxy !== undefined ? ['--proxy', proxy] : []),
  ];
  const fetch = `curl --pinnedpubkey ${pin} --insecure -fsS${proxy !== undefined ? ` --proxy ${shellQuote(proxy)}` : ''} ${shellQuote(`${server}${DOWNLOADS_PATH}/${INSTALL_SCRIPT}`)}`;
  const script = args.map((a) => (a.startsWith('--') ? a : shellQuote(a))).join(' ');
  // The token travels in sh's environment, not its arguments, which any user can read in ps.
  return (token) => `${fetch} | REEF_JOIN_TOKEN=${shellQuote(token)} sh -s -- ${script}`;
}

/**
 * The installer (POSIX sh, for any Linux with curl and sha256sum). Safe to run again: an
 * up-to-date executable is kept, the instance and its certificate are made only when
 * missing, registration is skipped when the instance is registered with this server, and
 * installing and starting a running service changes nothing (a new executable restarts it).
 *
 * REEF_INSTALL_BIN_DIR (default /usr/local/bin) is where `tentacle` goes; the Tentacle's own
 * variables (REEF_TENTACLE_ROOT, REEF_TENTACLE_SERVICE_MODE) pass through to it.
 */
export function installScript(): string {
  return `#!/bin/sh
# Installs a Reef Tentacle from the Reef server that served this script, registers it with
# a join token and starts it. Made by src/server/install/tentacle-install.ts; see
# docs/operations.md, "Enrolling machines with join tokens". Run as root.
set -eu

fail() { echo "install-tentacle: $*" >&2; exit 1; }
say() { echo "install-tentacle: $*" >&2; }

server= pin= thumbprint= kind=target token=\${REEF_JOIN_TOKEN:-} carrier=comms-port comms_address= proxy= instance=Tentacle name=
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || fail "$1 needs a value"
  case "$1" in
    --server) server=$2 ;;
    --pin) pin=$2 ;;
    --thumbprint) thumbprint=$2 ;;
    --kind) kind=$2 ;;
    --token) token=$2 ;;
    --carrier) carrier=$2 ;;
    --comms-address) comms_address=$2 ;;
    --proxy) proxy=$2 ;;
    --instance) instance=$2 ;;
    --name) name=$2 ;;
    *) fail "unknown option $1" ;;
  esac
  shift 2
done
[ -n "$server" ] && [ -n "$pin" ] && [ -n "$thumbprint" ] || fail "--server, --pin and --thumbprint are required (copy the whole line from the portal's Add machine page)"
[ -n "$token" ] || fail "no join token: give it in REEF_JOIN_TOKEN or --token (copy the whole line from the portal's Add machine page)"
case "$kind" in target) register=register-with ;; worker) register=register-worker ;; *) fail "--kind must be target or worker" ;; esac
[ "$(id -u)" = 0 ] || fail "run this as root (for example after sudo -i): it installs \${REEF_INSTALL_BIN_DIR:-/usr/local/bin}/tentacle and a service"
for tool in curl sha256sum uname mktemp install; do command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed; install it first"; done

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) fail "no Tentacle is built for $(uname -m); Reef ships linux-x64 and linux-arm64" ;;
esac

# Every request pins the server's public key: curl refuses any other server before sending.
fetch() {
  if [ -n "$proxy" ]; then curl --pinnedpubkey "$pin" --insecure -fsS --proxy "$proxy" "$@"
  else curl --pinnedpubkey "$pin" --insecure -fsS "$@"; fi
}

bin_dir=\${REEF_INSTALL_BIN_DIR:-/usr/local/bin}
tentacle=$bin_dir/tentacle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fetch -o "$work/SHA256SUMS" "$server${DOWNLOADS_PATH}/SHA256SUMS" || fail "could not fetch the list of downloads from $server (curl exit $?)"
file=$(sed -n "s/^[0-9a-f]\\{64\\}  \\(reef-tentacle-[0-9][A-Za-z0-9.+~-]*-linux-$arch\\)\$/\\1/p" "$work/SHA256SUMS" | sort -V | tail -n 1)
[ -n "$file" ] || fail "$server offers no reef-tentacle-<version>-linux-$arch; an administrator puts it in the server's downloads folder (docs/operations.md, Machines install from the server)"
want=$(sed -n "s/^\\([0-9a-f]\\{64\\}\\)  $file\$/\\1/p" "$work/SHA256SUMS")

# A new executable under a running service takes effect when the service restarts.
service_action=--start
if [ -x "$tentacle" ] && [ "$(sha256sum "$tentacle" | cut -c1-64)" = "$want" ]; then
  say "$tentacle is already $file"
else
  service_action=--restart
  say "downloading $file"
  fetch -o "$work/$file" "$server${DOWNLOADS_PATH}/$file" || fail "could not download $file (curl exit $?)"
  [ "$(sha256sum "$work/$file" | cut -c1-64)" = "$want" ] || fail "$file does not have the SHA-256 the server lists; nothing was installed"
  install -d -m 0755 "$bin_dir"
  install -m 0755 "$work/$file" "$bin_dir/.tentacle.new"
  mv -f "$bin_dir/.tentacle.new" "$tentacle"
  say "installed $tentacle"
fi

"$tentacle" create-instance --instance "$instance"
"$tentacle" new-certificate --instance "$instance" --if-blank >/dev/null
if [ -n "$proxy" ]; then
  hostport=\${proxy#http://}; hostport=\${hostport%/}
  userinfo=
  case "$hostport" in *@*) userinfo=\${hostport%@*}; hostport=\${hostport##*@} ;; esac
  proxy_host=\${hostport%:*}; proxy_port=\${hostport##*:}
  [ "$proxy_port" != "$hostport" ] || proxy_port=80
  for command in proxy polling-proxy; do
    if [ -n "$userinfo" ]; then
      "$tentacle" "$command" --instance "$instance" --proxyHost "$proxy_host" --proxyPort "$proxy_port" --proxyUsername "\${userinfo%%:*}" --proxyPassword "\${userinfo#*:}"
    else
      "$tentacle" "$command" --instance "$instance" --proxyHost "$proxy_host" --proxyPort "$proxy_port"
    fi
  done
fi

if "$tentacle" show-configuration --instance "$instance" | grep -q "\\"serverUrl\\": \\"$server\\""; then
  say "instance $instance is registered with $server already; not registering again"
else
  set -- --instance "$instance" --server "$server" --server-thumbprint "$thumbprint"
  [ -z "$name" ] || set -- "$@" --name "$name"
  case "$carrier" in
    https) set -- "$@" --server-comms-address "$comms_address" ;;
    websocket) set -- "$@" --server-web-socket "$comms_address" ;;
  esac
  # In the environment, not the arguments, which any user can read in ps.
  REEF_JOIN_TOKEN=$token "$tentacle" "$register" "$@"
fi
"$tentacle" service --instance "$instance" --install "$service_action"
say "done: the Tentacle runs as a service; it shows on the server as soon as it connects"
`;
}
