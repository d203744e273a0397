/**
 * The tiny guest's own userspace: the files our initramfs adds next to busybox and the kernel modules.
 * Embedded as strings (not .sh files) so the builder works the same from src/ and from dist/.
 * The contract they implement (markers, kernel command line) is documented in tiny.ts.
 *
 * Note for editors: these are String.raw templates, so backslashes reach the shell as written; shell
 * `${...}` expansions cannot be used (they would be JavaScript substitutions), hence `$var` and helpers.
 */

export interface GuestFile {
  /** Path inside the initramfs, without a leading slash. */
  path: string;
  mode: number;
  content: string;
}

/** PID 1, stage one: machine setup, NoCloud seed, markers; then hands over to busybox init. */
export const TINY_INIT = String.raw`#!/bin/sh
# Yunhai tiny guest, stage one (PID 1). Contract: src/agent/images/tiny.ts in the Yunhai sources.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run/yunhai/files /run/seed /tmp /var/log /root
mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
read -r up rest </proc/uptime
echo "YUNHAI-BOOT uptime=$up kernel=$(uname -r)"
hostname -F /etc/hostname
. /etc/yunhai/functions.sh

# Kernel modules, in dependency order (see /etc/yunhai/modules).
KV=$(uname -r)
while read -r m; do
  # ENODEV is expected: e.g. crc32c-intel on a CPU without SSE4.2 (TCG's default model).
  err=$(insmod "/lib/modules/$KV/$m" 2>&1) || case "$err" in
    *'No such device'*) ;;
    *) echo "yunhai: insmod $m: $err" ;;
  esac
done </etc/yunhai/modules

# ACPI power button (QMP system_powerdown) -> /etc/acpi/PWRF/00000080 -> clean poweroff.
acpid -c /etc/acpi -l /var/log/acpid.log

# NoCloud seed: an iso9660 virtio disk labelled cidata with a meta-data file.
wait_virtio_disks
SEED=$YH_SEED
seed_dev=
for d in /dev/vd*; do
  [ -b "$d" ] || continue
  [ "$(dd if="$d" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || continue
  label=$(dd if="$d" bs=1 skip=32808 count=32 2>/dev/null | tr -cd 'A-Za-z0-9_.-')
  case "$label" in cidata|CIDATA) ;; *) continue ;; esac
  if mount -t iso9660 -o ro "$d" "$SEED" 2>/dev/null; then
    if [ -f "$SEED/meta-data" ]; then seed_dev=$d; break; fi
    umount "$SEED"
  fi
done
if [ -n "$seed_dev" ]; then
  host=$(meta_data local-hostname)
  [ -n "$host" ] && set_hostname "$host"
  echo "YUNHAI-SEED dev=$seed_dev instance-id=$(meta_data instance-id) files=$(ls "$SEED" | tr '\n' ',')"
else
  echo "YUNHAI-SEED none"
fi

# Networking: static from yh.ip/yh.gw, DHCP for ip=dhcp or a network-config asking for it.
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  yip=$(cmdline_arg yh.ip)
  if [ -n "$yip" ]; then
    ip addr add "$yip" dev eth0
    ygw=$(cmdline_arg yh.gw)
    [ -n "$ygw" ] && ip route add default via "$ygw" dev eth0
    echo "YUNHAI-NET iface=eth0 ip=$yip gw=$ygw mode=static"
  elif [ "$(cmdline_arg ip)" = dhcp ] || { [ -f "$SEED/network-config" ] &&
      grep -Eq 'dhcp4:[[:space:]]*(true|yes)|type:[[:space:]]*dhcp' "$SEED/network-config"; }; then
    udhcpc -i eth0 -s /etc/yunhai/udhcpc.sh -t 3 -T 1 -A 3 -b -x "hostname:$(hostname)" >/dev/null 2>&1
  fi
  for s in $(cmdline_arg yh.dns | tr ',' ' '); do echo "nameserver $s" >>/etc/resolv.conf; done
fi

# user-data: a #! script runs as is; #cloud-config runs through the supported subset.
ud_rc=0
ud_type=none
if [ -n "$seed_dev" ] && [ -s "$SEED/user-data" ]; then
  ud=/run/yunhai/user-data
  if [ "$(head -c 2 "$SEED/user-data" | od -An -tx1 | tr -d ' \n')" = 1f8b ]; then
    gunzip -c "$SEED/user-data" >"$ud"
  else
    cp "$SEED/user-data" "$ud"
  fi
  case "$(head -n 1 "$ud" | tr -d '\r')" in
    '#!'*)
      ud_type=script
      chmod 0700 "$ud"
      (cd / && exec "$ud") </dev/null
      ud_rc=$?
      ;;
    '#cloud-config'*)
      ud_type=cloud-config
      if awk -v files=/run/yunhai/files -f /etc/yunhai/cloud-config.awk "$ud" >/run/yunhai/cloud-config.sh; then
        (cd / && sh /run/yunhai/cloud-config.sh) </dev/null
        ud_rc=$?
      else
        ud_rc=1
      fi
      ;;
    *)
      ud_type=unsupported
      ud_rc=1
      ;;
  esac
fi
echo "YUNHAI-USERDATA exit=$ud_rc type=$ud_type"

stats
echo "$CPUS $MEM" >/run/yunhai/stats.last
echo "YUNHAI-READY cpus=$CPUS mem_kib=$MEM"

# Stage two: busybox init keeps the stats watcher and a console shell running (/etc/inittab) and
# handles poweroff/reboot requests from inside the guest.
exec /sbin/init
`;

/** Shell helpers shared by /init and the stats watcher. */
export const TINY_FUNCTIONS = String.raw`# Yunhai tiny guest helpers (sourced). YH_SEED and YH_CMDLINE can be set for testing.
[ -n "$YH_SEED" ] || YH_SEED=/run/seed
[ -n "$YH_CMDLINE" ] || YH_CMDLINE=/proc/cmdline

# cmdline_arg NAME: value of NAME=value on the kernel command line (last one wins).
cmdline_arg() {
  set -f
  _v=
  for _x in $(cat "$YH_CMDLINE"); do
    case "$_x" in "$1="*) _v=$(echo "$_x" | cut -d= -f2-) ;; esac
  done
  set +f
  echo "$_v"
}

# meta_data KEY: a top-level scalar from the NoCloud meta-data (plain or quoted).
meta_data() {
  sed -n "s/^$1:[[:space:]]*//p" "$YH_SEED/meta-data" | head -n 1 |
    sed -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

set_hostname() {
  hostname "$1" && echo "$1" >/etc/hostname
}

# Waits (up to 5 s) until every virtio block device has its /dev node.
wait_virtio_disks() {
  _want=0
  for _d in /sys/bus/virtio/devices/*; do
    [ -e "$_d/device" ] && [ "$(cat "$_d/device")" = 0x0002 ] && _want=$((_want + 1))
  done
  _i=0
  while [ $_i -lt 50 ]; do
    _have=0
    for _b in /sys/block/vd*; do [ -e "$_b" ] && _have=$((_have + 1)); done
    [ $_have -ge $_want ] && return 0
    usleep 100000
    _i=$((_i + 1))
  done
}

# stats: onlines hot-plugged CPUs, then sets CPUS (online) and MEM (MemTotal, KiB).
stats() {
  CPUS=0
  for _c in /sys/devices/system/cpu/cpu[0-9]*; do
    if [ -e "$_c/online" ]; then
      read -r _s <"$_c/online"
      if [ "$_s" = 0 ]; then
        { echo 1 >"$_c/online"; } 2>/dev/null
        read -r _s <"$_c/online"
      fi
      [ "$_s" = 1 ] && CPUS=$((CPUS + 1))
    else
      CPUS=$((CPUS + 1))
    fi
  done
  MEM=0
  while read -r _k _v _u; do
    if [ "$_k" = MemTotal: ]; then MEM=$_v; break; fi
  done </proc/meminfo
}
`;

/** Respawned by busybox init: prints YUNHAI-STATS when the online CPUs or MemTotal change. */
export const TINY_STATS_WATCH = String.raw`#!/bin/sh
. /etc/yunhai/functions.sh
last=$(cat /run/yunhai/stats.last 2>/dev/null)
while :; do
  stats
  if [ "$CPUS $MEM" != "$last" ]; then
    last="$CPUS $MEM"
    echo "$last" >/run/yunhai/stats.last
    # The leading newline keeps the marker at the start of a line even after the shell's prompt.
    printf '\nYUNHAI-STATS cpus=%s mem_kib=%s\n' "$CPUS" "$MEM"
  fi
  sleep 1
done
`;

/** udhcpc event hook: applies the lease and reports it. */
export const TINY_UDHCPC = `#!/bin/sh
apply() {
  m=$mask
  [ -n "$m" ] || m=24
  ip addr flush dev "$interface"
  ip addr add "$ip/$m" dev "$interface"
  gw=
  for r in $router; do gw=$r; break; done
  [ -n "$gw" ] && ip route replace default via "$gw" dev "$interface"
  if [ -n "$dns" ]; then
    : >/etc/resolv.conf
    for s in $dns; do echo "nameserver $s" >>/etc/resolv.conf; done
  fi
  echo "YUNHAI-NET iface=$interface ip=$ip/$m gw=$gw mode=dhcp" >/dev/console
}
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound) apply ;;
  renew) ip -4 addr show dev "$interface" | grep -q "inet $ip/" || apply ;;
esac
exit 0
`;

/** busybox acpid action for the power button. */
export const TINY_ACPI_POWER = String.raw`#!/bin/sh
printf '\nYUNHAI-POWEROFF reason=acpi\n' >/dev/console
sync
poweroff -f
`;

/**
 * Translates the supported #cloud-config subset into a shell script (stdout):
 *   hostname: NAME
 *   write_files: - path, content (plain, quoted, or a | |- |+ > block), permissions, encoding (b64,
 *                  gz+b64), append
 *   runcmd:      - "a shell command line" | [argv, ...]
 * Other keys are ignored. Run as `awk -v files=DIR -f cloud-config.awk user-data`; file contents are
 * staged under DIR and the script copies them into place, then runs runcmd; its exit status is the
 * last command's, as with cloud-init's runcmd.
 */
export const TINY_CLOUD_CONFIG_AWK = String.raw`
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function indent(s) { match(s, /^ */); return RLENGTH }
function unesc(s,   out, i, c, n) {
  out = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "\\" && i < length(s)) {
      i++
      n = substr(s, i, 1)
      if (n == "n") c = "\n"; else if (n == "t") c = "\t"; else if (n == "r") c = "\r"; else c = n
    }
    out = out c
  }
  return out
}
function scalar(s,   q) {
  s = trim(s)
  q = substr(s, 1, 1)
  if (q == "'") { s = substr(s, 2); sub(/'[^']*$/, "", s); gsub(/''/, "'", s); return s }
  if (q == "\"") { s = substr(s, 2); sub(/"[^"]*$/, "", s); return unesc(s) }
  sub(/[ \t]+#.*$/, "", s)
  return s
}
function shq(s,   n, parts, i, out) {
  n = split(s, parts, "'")
  out = parts[1]
  for (i = 2; i <= n; i++) out = out "'\\''" parts[i]
  return "'" out "'"
}
function endblock(   i, s, last, fold) {
  inblk = 0
  fold = (style ~ /^>/)
  last = bn
  if (style !~ /\+/) while (last > 0 && blines[last] == "") last--
  s = ""
  for (i = 1; i <= last; i++) {
    if (i == 1) s = blines[i]
    else if (!fold) s = s "\n" blines[i]
    else if (blines[i] == "") s = s "\n"
    else if (blines[i - 1] == "") s = s blines[i]
    else s = s " " blines[i]
  }
  if (last > 0 && style !~ /-/) s = s "\n"
  content = s
  bn = 0
}
function flushitem(   f, cmd, redir) {
  if (inblk) endblock()
  if (item && path != "") {
    f = files "/" (++nfile)
    printf "%s", content > f
    close(f)
    redir = (app ~ /^(true|True|TRUE|yes|1)$/) ? ">>" : ">"
    if (enc ~ /^(b64|base64)$/) cmd = "base64 -d " shq(f)
    else if (enc ~ /^(gz\+b64|gzip\+base64|gz\+base64|gzip\+b64)$/) cmd = "base64 -d " shq(f) " | gunzip -c"
    else cmd = "cat " shq(f)
    wf = wf "mkdir -p \"$(dirname " shq(path) ")\" && " cmd " " redir " " shq(path) "\n"
    if (perms ~ /^[0-7]+$/) wf = wf "chmod " perms " " shq(path) "\n"
  }
  item = 0; path = ""; content = ""; perms = ""; enc = ""; app = ""
}
function runcmd(c,   n, parts, i, s) {
  c = trim(c)
  if (c ~ /^\[/) {
    sub(/^\[/, "", c)
    sub(/\][ \t]*$/, "", c)
    n = split(c, parts, ",")
    s = ""
    for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") shq(scalar(parts[i]))
    cmds = cmds s "\n"
  } else cmds = cmds scalar(c) "\n"
}
BEGIN { sec = ""; inblk = 0; item = 0; nfile = 0; host = ""; wf = ""; cmds = ""; if (files == "") files = "/tmp" }
{ sub(/\r$/, "") }
inblk {
  if ($0 ~ /^[ \t]*$/) { blines[++bn] = ""; next }
  ind = indent($0)
  if (bind < 0 && ind > kind) bind = ind
  if (bind >= 0 && ind >= bind) { blines[++bn] = substr($0, bind + 1); next }
  endblock()
}
/^[ \t]*#/ || /^[ \t]*$/ { next }
/^[^ \t-]/ {
  flushitem()
  sec = $0; sub(/[ \t]*:.*$/, "", sec)
  v = $0; sub(/^[^:]*:/, "", v)
  if (sec == "hostname") host = scalar(v)
  next
}
sec == "runcmd" {
  if ($0 ~ /^ *- /) { c = $0; sub(/^ *- /, "", c); runcmd(c) }
  next
}
sec == "write_files" {
  l = $0
  if (l ~ /^ *- /) { flushitem(); item = 1; sub(/- /, "  ", l) }
  ind = indent(l)
  l = trim(l)
  k = l; sub(/[ \t]*:.*$/, "", k)
  v = ""
  if (index(l, ":")) { v = l; sub(/^[^:]*:/, "", v); v = trim(v) }
  if (k == "content") {
    if (v ~ /^[|>]/) { inblk = 1; bind = -1; kind = ind; bn = 0; style = v }
    else content = scalar(v)
  }
  else if (k == "path") path = scalar(v)
  else if (k == "permissions") perms = scalar(v)
  else if (k == "encoding") enc = scalar(v)
  else if (k == "append") app = scalar(v)
  next
}
END {
  if (inblk) endblock()
  flushitem()
  print "#!/bin/sh"
  if (host != "") print "hostname " shq(host) " && echo " shq(host) " > /etc/hostname"
  printf "%s", wf
  printf "%s", cmds
}
`;

const INITTAB = `::respawn:/etc/yunhai/stats-watch
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
`;

const PROFILE = String.raw`export PATH=/sbin:/usr/sbin:/bin:/usr/bin
export PS1='\h:\w\$ '
`;

/** Every file the tiny guest adds to the initramfs (besides busybox, its applet links and modules). */
export const TINY_GUEST_FILES: readonly GuestFile[] = [
  { path: 'init', mode: 0o755, content: TINY_INIT },
  { path: 'etc/yunhai/functions.sh', mode: 0o644, content: TINY_FUNCTIONS },
  { path: 'etc/yunhai/stats-watch', mode: 0o755, content: TINY_STATS_WATCH },
  { path: 'etc/yunhai/udhcpc.sh', mode: 0o755, content: TINY_UDHCPC },
  { path: 'etc/yunhai/cloud-config.awk', mode: 0o644, content: TINY_CLOUD_CONFIG_AWK },
  { path: 'etc/acpi/PWRF/00000080', mode: 0o755, content: TINY_ACPI_POWER },
  { path: 'etc/inittab', mode: 0o644, content: INITTAB },
  { path: 'etc/profile', mode: 0o644, content: PROFILE },
  { path: 'etc/hostname', mode: 0o644, content: 'yunhai\n' },
  { path: 'etc/passwd', mode: 0o644, content: 'root:x:0:0:root:/root:/bin/sh\n' },
  { path: 'etc/group', mode: 0o644, content: 'root:x:0:\n' },
];

/** Of TINY_MODULES, those a kernel may lack (Debian's cloud kernel has no 9p; it has virtiofs). */
export const TINY_OPTIONAL_MODULES: readonly string[] = ['9pnet_virtio', '9p'];

/** Kernel modules the tiny guest loads (their dependencies are added by the builder). */
export const TINY_MODULES: readonly string[] = [
  'button',
  'evdev',
  'virtio_pci',
  'virtio_blk',
  'virtio_net',
  'virtio_balloon',
  'virtio_console',
  'virtio_rng',
  '9pnet_virtio',
  '9p',
  'virtiofs',
  'ext4',
  'isofs',
  'vmw_vsock_virtio_transport',
];
