# dockerboot-core.sh — boot-time core of dockerboot (DESIGN §2, §3).
# POSIX sh, busybox ash compatible, `set -u` clean.  Sourcing defines
# functions only; the generator adapters call dockerboot_main before the
# normal root mount, which then mounts the fresh rw subvolume.
#
# Kernel parameters (names of the original mkinitcpio-docker-hooks):
#   root=LABEL=x|UUID=u|PARTUUID=p|/dev/…  btrfs partition holding docker's data-root
#   rootflags=…,subvol=<rw>,…  rw root subvolume rebuilt at every boot (docker_rwlayer);
#                              never the top level, docker's data-root, boot_docker
#                              or the top layer, nor a path containing or inside them
#   docker_path=<dir>          data-root relative to the top level (docker)
#   docker_image=<name:tag>    image to boot (default: /etc/docker-btrfs.json)
#   toplayer=<dev spec>        partition holding the top layer (default: root)
#   toplayerflags=<opts>       mount options for it (subvolid=5 on the root device)
#   toplayerfstype=<type>      its filesystem type (btrfs on the root device)
#   toplayer_path=<dir>        top-layer directory there (boot_docker/toplayer);
#                              when missing, no top layer is copied (a note)
#   docker_image=sha256:<id>   pins an image by its full ID (no tag lookup)
#   dockerboot.state=, dockerboot.tries=, init=: boot assessment and fallback to
#                              the last good image, see dockerboot-assess.sh
#   dockerboot.previous=0      keep no <rw>.previous (by default the rw layer of
#                              the boot before stays, read-only, for one boot)
# Environment (tests, adapters): DOCKERBOOT_CMDLINE (instead of /proc/cmdline),
#   DOCKERBOOT_RUNDIR (/run/dockerboot), DOCKERBOOT_CONFIG (/etc/docker-btrfs.json),
#   DOCKERBOOT_LIBEXEC (/usr/lib/dockerboot: coreutils cp and sha256sum),
#   DOCKERBOOT_DEVICE_TIMEOUT (30 seconds), DOCKERBOOT_KVER (the running kernel).
# LIBEXEC also holds dockerboot-assess.sh (sourced by dockerboot_main) and
#   the booted system's dockerboot-mark-good script and unit.
# Tools besides btrfs and LIBEXEC's: busybox (or coreutils) tr sed grep tail find
#   readlink mkdir mv rm mount umount.
# dockerboot_main returns 0, or non-zero after ONE line on stderr:
#   "dockerboot: <what is wrong> — <what to do>".
# Every name the core sets starts with _db: the generators' own variables
# (mkinitcpio's $root, initramfs-tools' $ROOT, …) must stay untouched.
#
# The hook deletes only what it made: every rw layer it makes carries the
# marker file /.dockerboot-rwlayer holding "dockerboot-rwlayer v2 <ID>", the
# subvolume's own btrfs ID, which the kernel resolves back to its path: a
# copy of the file (cp -a of the root, a snapshot, docker export + import,
# a plain directory) lies elsewhere than the subvolume it names and is no
# mark.  Older hooks wrote "dockerboot-rwlayer v1 <UUID>" (the subvolume's
# UUID): still accepted, checked with `btrfs subvolume show`, which lists
# every subvolume of the filesystem (slow with many images: why v2).

# _db_fail WHAT FIX: the one line; _db_err keeps it.  With _db_quiet=1 it is
# only kept (the assessment tries an image before it knows what to say).
_db_fail() {
    _db_err="dockerboot: $1 — $2"
    [ "${_db_quiet:-0}" = 1 ] || printf '%s\n' "$_db_err" >&2
    return 1
}

_db_nl='
'
_db_mark=.dockerboot-rwlayer
_db_magic='dockerboot-rwlayer v1'
_db_magic2='dockerboot-rwlayer v2'

# Helpers set a variable instead of printing: under a slow CPU every "$(…)"
# is a fork, and the hook's time is measured (benchmarks/hook_time.py).

# _db_tool NAME: _db_tp = the tool's own copy (coreutils cp/sha256sum shipped in
# LIBEXEC: busybox cp drops xattrs and file capabilities), else NAME from PATH.
_db_tool() {
    _db_tp=${DOCKERBOOT_LIBEXEC:-/usr/lib/dockerboot}/$1
    [ -x "$_db_tp" ] || _db_tp=$1
}

# _db_arg KEY DEFAULT: _db_v = the last KEY=value on the command line (like the kernel).
_db_arg() {
    _db_v=$2
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    for _db_w in $_db_cmdline; do
        case $_db_w in "$1"=*) _db_v=${_db_w#*=} ;; esac
    done
    [ "$_db_noglob" = 1 ] || set +f
}

# chain_id DIFFID…: print the image-spec ChainID of the layers given bottom first.
chain_id() { _db_chain_id "$@" && printf '%s\n' "$_db_c"; }

# _db_chain_id DIFFID…: _db_c = the ChainID, computed: one sha256sum process
# per layer above the base (~30 ms each under QEMU TCG), plus an rm; none for
# a single layer, whose ChainID is its DiffID.  _db_top_chain avoids the
# per-layer processes for tall images.
_db_chain_id() {
    [ "$#" -gt 1 ] || { _db_c=${1-}; return 0; }
    _db_tool sha256sum
    _db_c='' _db_sha=$_db_tp
    _db_tmp=${DOCKERBOOT_RUNDIR:-/run/dockerboot}/.chain-input
    # The run directory exists in dockerboot_main (the root is mounted under it): no mkdir process.
    [ -d "${_db_tmp%/*}" ] || mkdir -p "${_db_tmp%/*}"
    for _db_d; do
        if [ -z "$_db_c" ]; then
            _db_c=$_db_d
        else
            printf '%s %s' "$_db_c" "$_db_d" >"$_db_tmp"
            _db_h=$("$_db_sha" "$_db_tmp")
            _db_c=sha256:${_db_h%% *}
        fi
    done
    rm -f "$_db_tmp"
}

# _db_top_chain DATA_ROOT DIFFID…: _db_c = the ChainID of the image's top
# layer, exactly what _db_chain_id computes, with a number of processes that
# does not grow with the layer count.  Up to 3 layers the computation costs
# at most as many processes as the layerdb walk (_db_lwalk: grep, one
# sha256sum, rm) and reads nothing else; from 4 layers on the walk is
# cheaper; when it finds no single verified chain (a damaged or hostile
# layerdb) the computation decides.
_db_top_chain() {
    _db_lwd=$1/image/btrfs/layerdb/sha256
    shift
    [ "$#" -ge 4 ] && _db_lwalk "$@" && return 0
    _db_chain_id "$@"
}

# _db_lwalk DIFFID… (4 or more, each sha256:<64 hex> as _db_diff_ids checked;
# the layerdb in _db_lwd): _db_c = the top layer's ChainID, found by walking
# docker's own layerdb instead of hashing layer by layer.  Each
# layerdb/sha256/<chain>/ holds "diff" (the layer's DiffID) and "parent" (the
# ChainID below; none for a base layer).  Docker's names and files are only
# hints here:
# - one grep process reads every entry's "diff" (-x -F: whole content,
#   literally) and prints those holding one of the image's DiffIDs, so the
#   shell parses and reads further only the image's own entries however
#   many other images share the store (a glob hands grep the files: no
#   per-entry list building in the shell, which is quadratic in ash);
# - first, in grep's subshell, every "diff" must be a regular file, neither
#   it nor its entry a symlink: else nothing is read (non-zero), so nothing
#   outside the data-root is read and no FIFO or device blocks or floods the
#   hook (a store docker wrote has none of them: the computation takes over);
# - the walk starts from the base layer's ChainID (= its DiffID) and takes,
#   for each next DiffID, the entry with that diff, or of several (the same
#   layer on other parents) the one whose "parent" is the chain so far;
#   none, or two on the same parent (a missing or lying file): non-zero;
# - then one sha256sum process hashes every link "<chain below> <DiffID>" at
#   once (all inputs are known once the names are) and each must give the
#   next entry's name: a lying diff or parent can never choose the result,
#   which is always the ChainID the computation would give.
# Non-zero (nothing decided, the computation decides) whenever any step is
# unsure.
_db_lwalk() {
    _db_lwb=$1 _db_lwds=''
    for _db_lwe do
        # Checked again: the table's variable names below are made of them.
        case $_db_lwe in sha256:*[!0-9a-f]*) return 1 ;; sha256:*) ;; *) return 1 ;; esac
        [ "${#_db_lwe}" = 71 ] || return 1
        _db_lwds="$_db_lwds $_db_lwe"
    done
    # Relative, the layerdb would be looked up in CDPATH.
    case $_db_lwd in /*) ;; *) _db_lwd=./$_db_lwd ;; esac
    # Exit 1 (no match) or 2 (an unreadable file): what was printed still
    # counts; 3: an entry the walk does not read.  grep is exec'd: one process.
    _db_o=$(
        cd "$_db_lwd" 2>/dev/null || exit 3
        set +f
        for _db_lwf in ./*/diff; do
            { [ -f "$_db_lwf" ] && [ ! -L "$_db_lwf" ] && [ ! -L "${_db_lwf%/diff}" ]; } || exit 3
        done
        set -f; IFS=' '
        # shellcheck disable=SC2086 # the patterns, checked hex, split on spaces
        set -- $_db_lwds
        for _db_lwe do set -- "$@" -e "$_db_lwe"; shift; done
        set +f
        exec grep -H -x -F -s "$@" ./*/diff </dev/null 2>/dev/null
    ) || [ "$?" -lt 3 ] || return 1
    # The table: _db_lw_<diff hex> = " <name>…", the entries holding that
    # diff; one variable per DiffID, made of checked hex only.  (Not one
    # string searched with "${table#*key}": ash and dash take time quadratic
    # in its length for that, ~20 ms a lookup at 30 layers on a fast host.)
    _db_lwv='' _db_ifs=$IFS
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    IFS=$_db_nl
    for _db_lwl in $_db_o; do
        case $_db_lwl in ./*/diff:sha256:*) ;; *) continue ;; esac
        _db_lwe=${_db_lwl#./} && _db_lwe=${_db_lwe%%/*}
        _db_lwl=${_db_lwl#"./$_db_lwe/diff:sha256:"}
        case $_db_lwl$_db_lwe in *[!0-9a-f]*) continue ;; esac
        [ "${#_db_lwl}" = 64 ] && [ "${#_db_lwe}" = 64 ] || continue
        # _db_lwv: the variables this call set (a same-named one from elsewhere is not read).
        case $_db_lwv in
            *" _db_lw_$_db_lwl"*) eval "_db_lwx=\$_db_lw_$_db_lwl" ;;
            *) _db_lwx='' _db_lwv="$_db_lwv _db_lw_$_db_lwl" ;;
        esac
        eval "_db_lw_$_db_lwl=\"\$_db_lwx \$_db_lwe\""
    done
    # The walk, writing each link's hash input as it goes.  One entry with
    # the next diff is taken as it is (the hashes check it); of several (the
    # same layer on other parents), the one whose "parent" is the chain so
    # far: read with the shell's read (no process), a regular file and no
    # symlink, and only then.
    _db_tool sha256sum
    _db_tmp=${DOCKERBOOT_RUNDIR:-/run/dockerboot}/.chain-input
    [ -d "${_db_tmp%/*}" ] || mkdir -p "${_db_tmp%/*}"
    _db_c=$_db_lwb _db_lwh='' _db_lwi=0 _db_sha=$_db_tp
    IFS=' '
    # shellcheck disable=SC2086 # one diff ID per word
    set -- $_db_lwds
    shift
    for _db_lwe do
        _db_lwx=''
        case $_db_lwv in *" _db_lw_${_db_lwe#sha256:}"*) eval "_db_lwx=\$_db_lw_${_db_lwe#sha256:}" ;; esac
        case $_db_lwx in
            ' '*' '*)
                _db_lwy=''
                for _db_lwl in $_db_lwx; do
                    _db_lwf=$_db_lwd/$_db_lwl/parent _db_lwp=''
                    { [ -f "$_db_lwf" ] && [ ! -L "$_db_lwf" ]; } || continue
                    { read -r _db_lwp <"$_db_lwf"; } 2>/dev/null || [ -n "$_db_lwp" ]   # no final newline
                    [ "$_db_lwp" = "$_db_c" ] || continue
                    [ -z "$_db_lwy" ] || { _db_lwy=''; break; }     # two on the same parent
                    _db_lwy=$_db_lwl
                done ;;
            *) _db_lwy=${_db_lwx# } ;;
        esac
        [ -n "$_db_lwy" ] || { _db_lwi=-$_db_lwi; break; }
        _db_lwi=$((_db_lwi + 1))
        { printf '%s %s' "$_db_c" "$_db_lwe" >"$_db_tmp.$_db_lwi"; } 2>/dev/null \
            || { _db_lwi=-$_db_lwi; break; }
        _db_lwh="$_db_lwh $_db_lwy" _db_c=sha256:$_db_lwy
    done
    # shellcheck disable=SC2086 # variable names, one per word
    [ -z "$_db_lwv" ] || unset $_db_lwv
    IFS=$_db_ifs
    # The links' files, then one sha256sum over all of them.
    set --
    _db_lwn=${_db_lwi#-}
    while [ "$_db_lwn" -gt 0 ]; do set -- "$_db_tmp.$_db_lwn" "$@"; _db_lwn=$((_db_lwn - 1)); done
    case $_db_lwi in -*) [ "$#" = 0 ] || rm -f "$@"; [ "$_db_noglob" = 1 ] || set +f; return 1 ;; esac
    _db_o=$("$_db_sha" "$@" </dev/null 2>/dev/null) || _db_o=''
    rm -f "$@"
    # Each output line: "<64 hex>  <file>" (a "\" first when the name needs escapes).
    _db_lwg=''
    IFS=$_db_nl
    for _db_lwl in $_db_o; do
        _db_lwl=${_db_lwl#\\}
        _db_lwg="$_db_lwg ${_db_lwl%% *}"
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    [ -n "$_db_lwh" ] && [ "$_db_lwg" = "$_db_lwh" ]
}

# dockerboot_normalize REF: print docker's familiar form (what repositories.json keys use).
dockerboot_normalize() { _db_normalize "$1"; printf '%s\n' "$_db_r"; }

# _db_normalize REF: _db_r = the familiar form.
_db_normalize() {
    _db_r=${1#docker.io/}
    _db_r=${_db_r#library/}
    case $_db_r in
        *@*) ;;
        # Only a colon after the last slash is a tag; host:port is not.
        *) case ${_db_r##*/} in *:*) ;; *) _db_r=$_db_r:latest ;; esac ;;
    esac
}

# dockerboot_resolve DATA_ROOT REF: print the image's top-layer subvolume.
dockerboot_resolve() { _db_resolve "$@" && printf '%s\n' "$_db_sub"; }

# _db_diff_ids CONFIG: _db_diffs = the image config's rootfs.diff_ids (as
# wizard/images.py reads them), one per word; fails when there are none or
# one is not sha256:<64 hex>.  Other "diff_ids" (an extra field, a label, a
# history entry) are not looked at.  The JSON is split at its quotes once
# escapes are blanked out (\" and \\ -> __): the pieces alternate between
# outside and inside strings, and the outside ones carry the nesting.
# Whitespace goes first (docker writes none outside strings anyway).  A
# duplicate key: the last wins, as in Go and Python.
_db_diff_ids() {
    # One sed process: the lines joined, the whitespace dropped, the escapes blanked.
    _db_o=$(sed -e ':a' -e '$!N' -e '$!ba' -e 's/[[:space:]]//g' -e 's/\\./__/g' <"$1") || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS='"'
    # shellcheck disable=SC2086 # split at the quotes
    set -- $_db_o
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    # _db_in: inside a string; _db_k: the last string; _db_at: 1 = in the
    # top-level rootfs, 2 = in its diff_ids array (depth 1 = the top object).
    _db_in=0 _db_depth=0 _db_at=0 _db_k='' _db_diffs='' _db_bad=
    for _db_l do
        if [ "$_db_in" = 1 ]; then
            _db_in=0 _db_k=$_db_l
            if [ "$_db_at" = 2 ]; then
                case $_db_l in sha256:*[!0-9a-f]*) _db_bad=1 ;; sha256:*) ;; *) _db_bad=1 ;; esac
                [ "${#_db_l}" = 71 ] || _db_bad=1
                _db_diffs="$_db_diffs $_db_l"
            fi
            continue
        fi
        _db_in=1
        case $_db_depth:$_db_at:$_db_k:$_db_l in
            '1:0:rootfs::{'*) _db_at=1 _db_diffs='' _db_bad='' ;;
            '2:1:diff_ids::['*) _db_at=2 ;;
        esac
        case $_db_l in *[][{}]*) ;; *) continue ;; esac
        while [ -n "$_db_l" ]; do
            case $_db_l in
                ['[{']*) _db_depth=$((_db_depth + 1)) ;;
                [']}']*) _db_depth=$((_db_depth - 1))
                    [ "$_db_at" = 2 ] && [ "$_db_depth" -lt 3 ] && _db_at=1
                    [ "$_db_at" = 1 ] && [ "$_db_depth" -lt 2 ] && _db_at=0 ;;
            esac
            _db_l=${_db_l#?}
        done
    done
    _db_diffs=${_db_diffs# }
    [ -n "$_db_diffs" ] && [ -z "$_db_bad" ]
}

# _db_resolve DATA_ROOT REF: _db_sub = the image's top-layer subvolume,
# _db_id = its ID (64 hex): repositories.json -> image config -> diff_ids ->
# ChainID -> layerdb cache-id -> btrfs/subvolumes/<cache-id>.  Reads this
# image's metadata, and from 4 layers on every layerdb entry's "diff" (the
# ChainID by the layerdb walk, _db_top_chain).  REF "sha256:<64 hex>" pins an
# image by ID (no tag, no repositories.json; a short ID is refused).  On
# failure _db_why says it in a few words ("is not in the docker store").
_db_resolve() {
    _db_img=$1/image/btrfs
    case $2 in
        sha256:*)
            _db_ref=$2 _db_id=${2#sha256:}
            case $_db_id in *[!0-9a-f]*) _db_id= ;; esac
            [ "${#_db_id}" = 64 ] || { _db_why="is not a full image ID"; _db_fail \
                "docker_image=$2 is not a full image ID (sha256: and 64 hex digits)" \
                "docker images --no-trunc lists the IDs; a short ID is not accepted"; return 1; }
            [ -f "$_db_img/imagedb/content/sha256/$_db_id" ] || { _db_why="is not in the docker store"
                _db_fail "image $2 is not in the docker store ($_db_img/imagedb/content/sha256 has no such ID)" \
                "docker images --no-trunc lists the IDs there; pin an image that exists"; return 1; }
            _db_resolve_id "$1"
            return
            ;;
    esac
    _db_normalize "$2"
    _db_ref=$_db_r
    [ -f "$_db_img/repositories.json" ] || { _db_why="cannot be looked up (no repositories.json)"; _db_fail \
        "$1 has no $_db_img/repositories.json" \
        "check docker_path= and that docker uses the btrfs storage driver"; return 1; }
    # The JSON without whitespace, split by the shell at , { and } into
    # "key":"value" words (one tr process); the ref is matched literally (a
    # case pattern from a quoted variable): no regex escaping.
    _db_id='' _db_ifs=$IFS
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    IFS=',{}'
    for _db_l in $(tr -d ' \n\r\t' <"$_db_img/repositories.json"); do
        case $_db_l in "\"$_db_ref\":\"sha256:"*) _db_id=${_db_l#*\"sha256:}; _db_id=${_db_id%\"} ;; esac
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    case $_db_id in
        '' | *[!0-9a-f]*) _db_why="is not in the docker store"; _db_fail \
            "image $_db_ref is not in $_db_img/repositories.json" \
            "docker pull/build it, or fix docker_image= (docker images lists what is there)"; return 1 ;;
    esac
    _db_resolve_id "$1"
}

# _db_resolve_id DATA_ROOT: _db_sub for the image whose ID is _db_id (named
# _db_ref in messages): image config -> diff_ids -> ChainID -> cache-id.
# The ChainID comes from the hook's record of the boot before when it has one
# for this ID (_db_chains, "<id> <chain>" lines that dockerboot-assess.sh
# reads from the state directory): a ChainID is a function of the image's
# config, whose name is its digest, so it never changes for an ID, and the
# record saves the config's parse and the hashing (two processes or more).
# A record whose layer is not there is ignored (computed again).  Every pair
# used is noted in _db_chused for the next boot.
_db_resolve_id() {
    _db_img=$1/image/btrfs
    _db_why="is damaged in the docker store"
    _db_cfg=$_db_img/imagedb/content/sha256/$_db_id
    [ -f "$_db_cfg" ] || { _db_fail "config of image $_db_ref ($_db_cfg) is missing" \
        "the docker store is damaged: pull or build $_db_ref again"; return 1; }
    _db_c=''
    case ${_db_chains:-} in
        *"$_db_nl$_db_id "*)
            _db_c=${_db_chains#*"$_db_nl$_db_id "}
            _db_c=sha256:${_db_c%%"$_db_nl"*}
            _db_cache_id "$1" || _db_c='' ;;
    esac
    if [ -z "$_db_c" ]; then
        _db_diff_ids "$_db_cfg" || { _db_fail "image $_db_ref has no valid rootfs.diff_ids in $_db_cfg" \
            "the docker store is damaged: pull or build $_db_ref again"; return 1; }
        # shellcheck disable=SC2086 # one diff ID per word
        _db_top_chain "$1" $_db_diffs
        _db_cache_id "$1" || { case $_db_cid in
            '' | *[!0-9a-f]*) _db_fail "layer metadata $_db_cidf of image $_db_ref is missing" \
                "the docker store is damaged: pull or build $_db_ref again" ;;
            *) _db_fail "subvolume $1/btrfs/subvolumes/$_db_cid of image $_db_ref is missing" \
                "the docker store is damaged: pull or build $_db_ref again" ;;
        esac; return 1; }
    fi
    _db_sub=$1/btrfs/subvolumes/$_db_cid _db_why=
    _db_chused="${_db_chused:-}$_db_id ${_db_c#sha256:}$_db_nl"
}

# _db_cache_id DATA_ROOT: _db_cid = the cache-id of the layer _db_c (its
# file _db_cidf); non-zero unless it is hex and names a subvolume there.
_db_cache_id() {
    _db_cidf=$_db_img/layerdb/sha256/${_db_c#sha256:}/cache-id
    _db_cid=''
    { read -r _db_cid <"$_db_cidf"; } 2>/dev/null || [ -n "$_db_cid" ]  # no final newline
    case $_db_cid in '' | *[!0-9a-f]*) return 1 ;; esac
    [ -d "$1/btrfs/subvolumes/$_db_cid" ]
}

# _db_device SPEC: _db_p = the block device, polling up to the timeout.
_db_device() {
    _db_t=${DOCKERBOOT_DEVICE_TIMEOUT:-30}
    while :; do
        case $1 in
            LABEL=*) _db_p=/dev/disk/by-label/${1#LABEL=}; _db_b="-L ${1#LABEL=}" ;;
            UUID=*) _db_p=/dev/disk/by-uuid/${1#UUID=}; _db_b="-U ${1#UUID=}" ;;
            PARTUUID=*) _db_p=/dev/disk/by-partuuid/${1#PARTUUID=}; _db_b= ;;
            *) _db_p=$1; _db_b= ;;
        esac
        [ -b "$_db_p" ] && return 0
        if [ -n "$_db_b" ] && command -v blkid >/dev/null 2>&1; then
            # shellcheck disable=SC2086 # "-L label" is two words
            _db_p=$(blkid $_db_b 2>/dev/null) && [ -b "$_db_p" ] && return 0
        fi
        [ "$_db_t" -gt 0 ] || return 1
        _db_t=$((_db_t - 1))
        sleep 1
    done
}

# _db_mount SPEC FSTYPE OPTS DIR WHAT: find and mount a partition.
_db_mount() {
    # shellcheck disable=SC2015 # the assignment cannot fail
    _db_device "$1" && _db_dev=$_db_p || { _db_fail "$5 partition $1 not found after ${DOCKERBOOT_DEVICE_TIMEOUT:-30}s" \
        "check $5= on the kernel command line (blkid lists labels and UUIDs)"; return 1; }
    [ -d "$4" ] || mkdir -p "$4"
    # A btrfs on several devices mounts only once the kernel knows them all:
    # scanned only then (a scan reads every block device, 0.15 s under TCG,
    # and the generators' own btrfs support has usually done it already).
    _db_o=$(mount ${2:+-t "$2"} ${3:+-o "$3"} "$_db_dev" "$4" 2>&1) \
        || { [ "$2" = btrfs ] && btrfs device scan >/dev/null 2>&1 \
            && _db_o=$(mount -t btrfs ${3:+-o "$3"} "$_db_dev" "$4" 2>&1); } || { _db_fail \
        "mounting $_db_dev ($1) failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "check that it is ${2:-a valid filesystem} and the ${5}flags= options"; return 1; }
}

# _db_norm PATH: _db_n = PATH without empty and "." components, no leading
# or trailing slash ('' for the top level); fails on a ".." component.
_db_norm() {
    _db_n='' _db_rest=$1
    while [ -n "$_db_rest" ]; do
        _db_c=${_db_rest%%/*}
        case $_db_rest in */*) _db_rest=${_db_rest#*/} ;; *) _db_rest= ;; esac
        case $_db_c in '' | .) ;; ..) return 1 ;; *) _db_n=${_db_n:+$_db_n/}$_db_c ;; esac
    done
}

# _db_overlap A B: A and B (normalized) are the same path, or one holds the other.
_db_overlap() {
    [ -z "$2" ] && return 0
    case $1/ in "$2"/*) return 0 ;; esac
    case $2/ in "$1"/*) return 0 ;; esac
    return 1
}

# _db_nolink REL: no component of REL (normalized) below the mounted top
# level is a symlink; else _db_x = the first one (relative) and non-zero.
_db_nolink() {
    _db_x='' _db_rest=$1
    while [ -n "$_db_rest" ]; do
        _db_x=${_db_x:+$_db_x/}${_db_rest%%/*}
        case $_db_rest in */*) _db_rest=${_db_rest#*/} ;; *) _db_rest= ;; esac
        [ -L "$_db_top/$_db_x" ] && return 1
    done
    return 0
}

# _db_check_rw RAW: refuse a rootflags=subvol= that could name anything but a
# root this hook makes; _db_rw = the normalized name.  Only names: it runs
# before anything is mounted.
_db_check_rw() {
    _db_use="use the rw layer's own name, e.g. rootflags=subvol=docker_rwlayer"
    _db_norm "$1" || { _db_fail "rootflags=subvol=$1 contains .." "$_db_use"; return 1; }
    _db_rw=$_db_n
    [ -n "$_db_rw" ] || { _db_fail "rootflags=subvol=$1 names the partition's top level, which the hook would delete" \
        "$_db_use"; return 1; }
    _db_norm "$_db_dpath" || _db_n=$_db_dpath
    _db_overlap "$_db_rw" "$_db_n" && { _db_fail \
        "rootflags=subvol=$1 is, holds or lies inside docker's data-root (docker_path=$_db_dpath), which the hook would delete" \
        "$_db_use"; return 1; }
    _db_norm "$_db_tlpath" || _db_n=$_db_tlpath
    # boot_docker holds kernel, initramfs and config: fixed name, and the top layer's directory.
    for _db_x in boot_docker "${_db_n%/*}" "$_db_n"; do
        [ -n "$_db_x" ] && _db_overlap "$_db_rw" "$_db_x" && { _db_fail \
            "rootflags=subvol=$1 is, holds or lies inside $_db_x (kernel, initramfs, top layer), which the hook would delete" \
            "$_db_use"; return 1; }
    done
    return 0
}

# _db_show PATH: PATH is a btrfs subvolume; _db_uuid, _db_puuid (- when it is
# no snapshot) and _db_flags (readonly or -) from `btrfs subvolume show`.
# The first line (the path) and the Snapshot(s) list are names: skipped.
_db_show() {
    _db_uuid='' _db_puuid='' _db_flags=
    _db_o=$(btrfs subvolume show "$1" 2>/dev/null) || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=$_db_nl
    for _db_l in ${_db_o#*"$_db_nl"}; do
        _db_l=${_db_l#"${_db_l%%[! 	]*}"}
        case $_db_l in
            UUID:*) _db_uuid=${_db_l##*[ 	]} ;;
            'Parent UUID:'*) _db_puuid=${_db_l##*[ 	]} ;;
            Flags:*) _db_flags=${_db_l##*[ 	]} ;;
            Snapshot*) break ;;
        esac
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    [ -n "$_db_uuid" ]
}

# _db_marked PATH: PATH (below _db_top, no symlink) is a subvolume carrying
# this hook's mark.  v2: the kernel puts the subvolume of the ID the mark
# names exactly at PATH — one `btrfs inspect-internal subvolid-resolve`,
# whose cost does not grow with the number of subvolumes (docker makes one
# per layer).  v1 (older hooks): `btrfs subvolume show` gives PATH's UUID.
_db_marked() {
    [ -f "$1/$_db_mark" ] && [ ! -L "$1/$_db_mark" ] || return 1
    _db_l=
    { read -r _db_l <"$1/$_db_mark"; } 2>/dev/null
    case $_db_l in
        "$_db_magic2 "*)
            _db_x=${_db_l#"$_db_magic2 "}
            # A subvolume's ID: 256 or more (5 is the top level), no leading zero.
            case $_db_x in '' | 0* | *[!0-9]*) return 1 ;; esac
            [ "${#_db_x}" -le 18 ] && [ "$_db_x" -ge 256 ] || return 1
            _db_o=$(btrfs inspect-internal subvolid-resolve "$_db_x" "$_db_top" 2>/dev/null) \
                && [ "$_db_o" = "${1#"$_db_top"/}" ] ;;
        "$_db_magic "*) _db_mk=$_db_l    # _db_show uses _db_l
            _db_show "$1" && [ "$_db_mk" = "$_db_magic $_db_uuid" ] ;;
        *) return 1 ;;
    esac
}

# _db_legacy: the subvolume just shown by _db_show is a rw layer made before
# marks existed.  Migration rule: the hook of the first release made rw
# layers without a mark, and refusing them would stop every installed
# machine at the emergency shell after an upgrade.  An unmarked one is
# accepted (and replaced by a marked one) only when it can be nothing else:
# its name passed _db_check_rw (not the top level, docker's data-root,
# boot_docker or the top layer, nor holding them), it is a subvolume (not a
# plain directory), writable, a snapshot (`btrfs subvolume create` makes
# none: a user's own subvolume is refused), and its origin lies inside
# docker's data-root or no longer exists (docker deletes the layers of
# removed images).  A snapshot of anything else is refused.
_db_legacy() {
    [ "$_db_flags" != readonly ] && [ -n "$_db_puuid" ] && [ "$_db_puuid" != - ] || return 1
    _db_o=$(btrfs subvolume show -u "$_db_puuid" "$_db_top" 2>/dev/null) || return 0
    _db_o=${_db_o%%"$_db_nl"*}
    _db_o=${_db_o#'<FS_TREE>/'}
    _db_norm "$_db_dpath" || return 1
    case $_db_o/ in "$_db_n"/?*) return 0 ;; esac
    return 1
}

# _db_ours PATH: PATH is a rw layer this hook made (_db_own=1: its mark) or a
# legacy one (_db_own=0); else one line and non-zero.  Nothing is ever
# deleted without it.
_db_ours() {
    _db_own=1
    [ ! -L "$1" ] && _db_marked "$1" && return 0
    _db_own=0
    [ ! -L "$1" ] && _db_show "$1" && _db_legacy && return 0
    _db_fail "${1#"$_db_top"/} was not made by dockerboot" \
        "nothing was deleted (no $_db_mark mark); if it is yours choose another rootflags=subvol=, if it is an old root delete it by hand (mount the partition with -o subvolid=5, btrfs subvolume delete)"
}

# _db_delete PATH: delete the rw layer PATH (checked by _db_ours) and the
# subvolumes nested in it (the booted system's, e.g. systemd's
# /var/lib/machines), which make a plain delete fail.  find walks PATH
# without following symlinks, deepest first (-depth); inode 256 is a
# subvolume's root and no other directory's; names are never split.  A
# read-only PATH (<rw>.previous) or read-only nested subvolume keeps the
# entries of what is nested in it (EROFS): all are made writable first,
# top down, only on this slow path (PATH is ours: all of it goes).
_db_delete() {
    btrfs subvolume delete "$1" >/dev/null 2>&1 && return 0
    find "$1" -type d -inum 256 -exec btrfs property set -ts {} ro false \; >/dev/null 2>&1
    find "$1" -mindepth 1 -depth -type d -inum 256 -exec btrfs subvolume delete {} \; >/dev/null 2>&1
    btrfs subvolume delete "$1" >/dev/null 2>&1
}

# _db_remove PATH: delete PATH if it exists and this hook made it.
_db_remove() {
    [ -e "$1" ] || [ -L "$1" ] || return 0
    _db_ours "$1" || return 1
    _db_delete "$1" || _db_fail "${1#"$_db_top"/} cannot be deleted" \
        "delete it by hand (btrfs subvolume delete) from the emergency shell"
}

# _db_prev_name: <rw>.previous (_db_prev) is a name the hook may use: it is
# not, does not hold and does not lie inside docker's data-root, boot_docker,
# the top layer or the state directory (as _db_check_rw for <rw>; the name
# ends in .previous, so it is never the top level).  Else _db_x = what it
# overlaps and non-zero.
_db_prev_name() {
    _db_pv=${_db_prev#"$_db_top"/}
    _db_norm "$_db_dpath" || _db_n=$_db_dpath
    _db_x=$_db_n
    _db_overlap "$_db_pv" "$_db_x" && return 1
    _db_norm "$_db_tlpath" || _db_n=$_db_tlpath
    for _db_x in boot_docker "${_db_n%/*}" "$_db_n" "${_db_state:-}"; do
        [ -n "$_db_x" ] && _db_overlap "$_db_pv" "$_db_x" && return 1
    done
    return 0
}

# _db_previous: keep the rw layer just moved aside (_db_old, checked by
# _db_ours before the swap) as <rw>.previous, read-only, for one boot: a file
# lost at the reboot can still be copied out of it.  The one of the boot
# before goes first, and only if this hook made it (its mark, as _db_ours
# checks before every delete).  Never fails the boot: whatever stands in the way (a .previous
# that is not ours, a name overlapping what the hook never touches, a failed
# ro flag or rename) leaves one warning in _db_note and _db_old where it is,
# for the caller to delete as before.  dockerboot.previous=0 (_db_keep=0):
# an ours .previous is deleted (the space comes back), none is made, and a
# .previous that is not ours is none of the hook's business (no warning).
_db_previous() {
    _db_prev=$_db_rwp.previous
    _db_pw="warning: $_db_rw.previous"
    _db_prev_name || { [ "$_db_keep" = 0 ] || _db_note="${_db_note:+$_db_note; }$_db_pw is, holds or lies inside $_db_x: the last root is not kept"
        return 0; }
    # Kept on: replaced only by a newer root (none on a first boot).
    [ "$_db_keep" = 0 ] || [ -e "$_db_old" ] || return 0
    if [ -e "$_db_prev" ] || [ -L "$_db_prev" ]; then
        # _db_ours without its legacy rule: no release made an unmarked
        # .previous, and a snapshot whose origin is gone is no proof.
        if [ -L "$_db_prev" ] || ! _db_marked "$_db_prev"; then
            [ "$_db_keep" = 0 ] || _db_note="${_db_note:+$_db_note; }$_db_pw was not made by dockerboot: left as it is, the last root is not kept"
            return 0
        fi
        _db_delete "$_db_prev" || { _db_note="${_db_note:+$_db_note; }$_db_pw cannot be deleted (tried again next boot): the last root is not kept"
            return 0; }
    fi
    [ "$_db_keep" = 1 ] || return 0
    # Only a marked root (_db_rwm): a read-only unmarked one (a legacy root of
    # the first release, which _db_legacy accepts only writable) would never be
    # ours again.
    [ "$_db_rwm" = 1 ] || return 0
    # The ro flag first, the rename last: .previous is never writable.  Flag
    # and rename keep the subvolume's ID (and UUID), so its mark stays valid.
    if btrfs property set -ts "$_db_old" ro true >/dev/null 2>&1 \
        && [ ! -e "$_db_prev" ] && [ ! -L "$_db_prev" ] && mv "$_db_old" "$_db_prev" 2>/dev/null; then
        return 0
    fi
    _db_note="${_db_note:+$_db_note; }$_db_pw: cannot make the last root read-only or rename it, it is not kept"
    return 0
}

# _db_merge_accounts TOPLAYER IMAGE NEW: give the image's users and groups back.
# Once the wizard made a user, the top layer holds full copies of these files;
# copied over a newer image they would hide the system users its packages
# added.  For each file in both TOPLAYER and IMAGE, NEW's copy becomes the top
# layer's lines in order, then the image's non-empty lines whose name (all
# before the first ':') the top layer lacks.  One grep process reads every
# file ("path:line" per line, also a last line without a newline): a shell
# `read` costs two system calls per byte, slow under emulation.  Written in
# place (only when something is added), so mode, owner and xattrs stay the
# top layer's.  On failure _db_f names the file(s) and NEW must be discarded
# (it may hold a partly written file).
_db_merge_accounts() {
    _db_nl='
'
    [ -L "$3/etc" ] && return 0     # writing there could leave the new root
    _db_mt=$1 _db_mi=$2 _db_mn=$3 _db_files='' _db_fl=
    set --
    for _db_f in etc/passwd etc/group etc/shadow etc/gshadow; do
        [ -f "$_db_mt/$_db_f" ] && [ ! -L "$_db_mt/$_db_f" ] && [ -f "$_db_mi/$_db_f" ] \
            && [ ! -L "$_db_mi/$_db_f" ] && [ -f "$_db_mn/$_db_f" ] && [ ! -L "$_db_mn/$_db_f" ] \
            || continue
        _db_files=$_db_files$_db_nl$_db_f _db_fl="$_db_fl $_db_f"   # for the loop, for errors
        set -- "$@" "$_db_mt/$_db_f" "$_db_mi/$_db_f"
    done
    [ -n "$_db_files" ] || return 0
    _db_f=${_db_fl# }
    # grep exits 1 when every file is empty (no line at all), 2 on an error.
    _db_all=$(grep -H '' "$@" 2>/dev/null) || [ $? = 1 ] || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=$_db_nl
    # One word per line (each has its "path:" prefix: none is empty).  grep
    # printed the files in the order given, each file's lines together: one
    # pass over all lines, not one per file (ash is slow under emulation).
    # shellcheck disable=SC2086
    set -- $_db_all
    for _db_f in $_db_files; do
        _db_out='' _db_names=$_db_nl _db_add=''
        while [ "$#" -gt 0 ]; do
            case $1 in "$_db_mt/$_db_f:"*) ;; *) break ;; esac
            _db_l=${1#"$_db_mt/$_db_f:"}
            shift
            _db_out=$_db_out$_db_l$_db_nl
            _db_names=$_db_names${_db_l%%:*}$_db_nl
        done
        while [ "$#" -gt 0 ]; do
            case $1 in "$_db_mi/$_db_f:"*) ;; *) break ;; esac
            _db_l=${1#"$_db_mi/$_db_f:"}
            shift
            [ -n "$_db_l" ] || continue
            # A quoted pattern matches literally: whole names between newlines.
            case $_db_names in *"$_db_nl${_db_l%%:*}$_db_nl"*) continue ;; esac
            _db_add=$_db_add$_db_l$_db_nl
        done
        [ -z "$_db_add" ] && continue
        { printf '%s' "$_db_out$_db_add" >"$_db_mn/$_db_f"; } 2>/dev/null \
            || { IFS=$_db_ifs; [ "$_db_noglob" = 1 ] || set +f; return 1; }
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    return 0
}

# --- the top layer over the new root, never through the image's symlinks ---
# The new root is an image: its symlinks (etc/resolv.conf -> ../run/…,
# etc/localtime -> /usr/share/…, lib -> usr/lib, or a hostile etc/x -> /)
# point outside it once read from the initramfs.  So the copy walks the top
# layer itself and writes each entry at a real place inside the new root:
# a symlinked directory of the image is followed within the new root only
# (_db_follow), a file replaces a symlink (cp --remove-destination: never
# written through), a directory the image has keeps its mode and owner (only
# a directory new to the image is copied with its own), "." itself is never
# copied (/ keeps the image's mode), and the top layer's own symlinks are
# copied as symlinks.  One cp per top-layer directory, shell tests elsewhere,
# readlink only for an actual symlink: the hook's time is measured.

# _db_follow DIR TARGET: _db_T = where the symlink TARGET, found in the real
# directory DIR ('' = its /) of the root _db_fr (the new root for the top
# layer, an image's subvolume for the assessment), leads inside it: an
# absolute target starts at the new root, ".." stops there, symlinks met on
# the way are followed the same way (at most 40), components that do not
# exist are kept as they are.  _db_T is relative to _db_fr and has no
# symlink in it, but its last component may not exist.
_db_follow() {
    _db_hops=0
    case $2 in /*) _db_T= ;; *) _db_T=$1 ;; esac
    _db_rest=$2
    while [ -n "$_db_rest" ]; do
        _db_c=${_db_rest%%/*}
        case $_db_rest in */*) _db_rest=${_db_rest#*/} ;; *) _db_rest= ;; esac
        case $_db_c in
            '' | .) continue ;;
            ..) case $_db_T in */*) _db_T=${_db_T%/*} ;; *) _db_T= ;; esac; continue ;;
        esac
        _db_x=${_db_T:+$_db_T/}$_db_c
        if [ -L "$_db_fr/$_db_x" ]; then
            _db_hops=$((_db_hops + 1))
            [ "$_db_hops" -le 40 ] || return 1
            _db_l=$(readlink "$_db_fr/$_db_x") && [ -n "$_db_l" ] || return 1
            case $_db_l in /*) _db_T= ;; esac
            _db_rest=$_db_l${_db_rest:+/$_db_rest}
        else
            _db_T=$_db_x
        fi
    done
}

# _db_batch SRCDIR DESTDIR ENTRY…: copy in one cp the ENTRYs (paths in SRCDIR)
# that _db_walk does not walk into, into the new root's real directory DESTDIR.
_db_batch() {
    _db_bd=$_db_new${2:+/$2}
    shift 2
    for _db_e do
        shift
        [ -e "$_db_e" ] || [ -L "$_db_e" ] || continue      # a glob that matched nothing
        _db_d=$_db_bd/${_db_e##*/}
        [ -d "$_db_e" ] && [ ! -L "$_db_e" ] && { [ -e "$_db_d" ] || [ -L "$_db_d" ]; } && continue
        set -- "$@" "$_db_e"
    done
    [ "$#" = 0 ] && return 0
    _db_o=$("$_db_cp" -a --remove-destination "$@" "$_db_bd/" 2>&1) || _db_fail \
        "copying the top layer $_db_tlpath failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "fix or remove the file named there in the top layer"
}

# _db_walk SRCDIR DESTDIR: lay the top layer's directory SRCDIR over the new
# root's real directory DESTDIR ('' = /): first into each directory the
# image has, then one cp for everything else.  (The other order would walk
# again into the directories the cp has just made: a cp more for each.)
# Entries stay in "$@" after $1 $2 (the only variables a recursive call
# leaves alone), rotated through once: the empty word marks where the list
# started (a glob never gives one).
_db_walk() {
    set -- "$1" "$2" "$1"/* "$1"/.[!.]* "$1"/..?* ''
    while [ -n "$3" ]; do
        _db_e=$3 _db_d=${2:+$2/}${3##*/}
        if [ -d "$_db_e" ] && [ ! -L "$_db_e" ] && { [ -e "$_db_new/$_db_d" ] || [ -L "$_db_new/$_db_d" ]; }; then
            _db_T=$_db_d _db_go=1
            if [ -L "$_db_new/$_db_d" ]; then
                _db_l=$(readlink "$_db_new/$_db_d")
                _db_follow "$2" "$_db_l" || { _db_fail \
                    "the top layer's ${_db_e#"$_db_tl"/} meets a symlink loop in the image (/$_db_d)" \
                    "remove it from the top layer or fix the image's symlink"; return 1; }
                if [ ! -e "$_db_new/$_db_T" ] && [ ! -L "$_db_new/$_db_T" ]; then
                    # Where the link leads is new: the whole directory goes there.
                    case $_db_T in */*) mkdir -p "$_db_new/${_db_T%/*}" 2>/dev/null ;; esac
                    _db_o=$("$_db_cp" -a "$_db_e" "$_db_new/$_db_T" 2>&1) || { _db_fail \
                        "copying the top layer $_db_tlpath failed: $(printf '%s' "$_db_o" | tail -n 1)" \
                        "fix or remove the file named there in the top layer"; return 1; }
                    _db_go=0
                fi
            fi
            if [ "$_db_go" = 1 ]; then
                [ -d "$_db_new/$_db_T" ] && [ ! -L "$_db_new/$_db_T" ] || { _db_fail \
                    "the top layer's directory ${_db_e#"$_db_tl"/} is a file in the image (/$_db_T)" \
                    "remove it from the top layer or from the image"; return 1; }
                _db_walk "$_db_e" "$_db_T" || return 1
            fi
        fi
        _db_a=$1 _db_b=$2 _db_e=$3     # _db_e again: a recursive call changed it
        shift 3
        set -- "$_db_a" "$_db_b" "$@" "$_db_e"
    done
    _db_a=$1 _db_b=$2
    shift 3
    # The directories walked into exist in the new root: the batch skips them.
    _db_batch "$_db_a" "$_db_b" "$@"
}

# _db_copy_top: the whole top layer over the new root.
_db_copy_top() {
    _db_tool cp
    _db_cp=$_db_tp _db_fr=$_db_new
    case $- in *f*) _db_noglob=1; set +f ;; *) _db_noglob=0 ;; esac   # the walk globs
    _db_walk "$_db_tl" ''
    _db_rc=$?
    [ "$_db_noglob" = 0 ] || set -f
    return "$_db_rc"
}

_db_cleanup() {
    [ "$_db_tl_mounted" = 1 ] && { umount "$_db_run/toplayer" 2>/dev/null; rmdir "$_db_run/toplayer" 2>/dev/null; }
    [ "$_db_root_mounted" = 1 ] && { umount "$_db_run/root" 2>/dev/null; rmdir "$_db_run/root" 2>/dev/null; }
    _db_tl_mounted=0 _db_root_mounted=0
    return 0
}

# Seconds since boot, for the hook's own timing line (benchmarks read it).
# _db_uptime VAR: VAR = seconds since boot (read is a shell built-in: no fork).
_db_uptime() {
    _db_u='?'
    { read -r _db_u _db_idle </proc/uptime; } 2>/dev/null
    eval "$1=\$_db_u"
}

# dockerboot_main: rebuild the rw root subvolume from the configured image.
# The one exit path: a half-made new root is deleted, everything mounted is
# unmounted, whatever failed.
dockerboot_main() {
    _db_run=${DOCKERBOOT_RUNDIR:-/run/dockerboot}
    _db_lx=${DOCKERBOOT_LIBEXEC:-/usr/lib/dockerboot}
    _db_tl_mounted=0 _db_root_mounted=0 _db_note='' _db_new=
    _db_uptime _db_t0
    # Called as a condition: a caller's set -e cannot stop it half-way, before the cleanup.
    _db_status=0
    _db_main || _db_status=$?
    # _db_new is set only while it holds a new root this run made (never on success).
    [ "$_db_status" = 0 ] || { [ -n "$_db_new" ] && [ -e "$_db_new" ] && _db_delete "$_db_new"; }
    _db_cleanup
    [ "$_db_status" = 0 ] || return 1
    [ -z "$_db_note" ] || printf 'dockerboot: %s\n' "$_db_note" >&2
    _db_uptime _db_t1
    # shellcheck disable=SC2154 # _db_t0 and _db_t1 are set by _db_uptime (eval)
    printf 'dockerboot: %s is now a fresh snapshot of %s (uptime %s -> %s)\n' \
        "$_db_rw" "$_db_ref" "$_db_t0" "$_db_t1" >&2
    return 0
}

_db_main() {
    if [ -n "${DOCKERBOOT_CMDLINE+set}" ]; then
        _db_cmdline=$DOCKERBOOT_CMDLINE
    else
        _db_cmdline=
        { read -r _db_cmdline </proc/cmdline; } 2>/dev/null
    fi
    _db_arg root ''; _db_rootspec=$_db_v
    [ -n "$_db_rootspec" ] || { _db_fail "no root= on the kernel command line" \
        "add root=LABEL=<btrfs label> to the boot entry"; return 1; }
    # subvol= among the other rootflags options (compress=zstd,…); the last wins.
    _db_rw=docker_rwlayer
    _db_arg rootflags ''
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=,
    for _db_o in $_db_v; do
        case $_db_o in subvol=*) _db_rw=${_db_o#subvol=} ;; esac
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    _db_arg docker_path docker; _db_dpath=$_db_v
    _db_arg docker_image ''; _db_ref=$_db_v
    _db_arg toplayer "$_db_rootspec"; _db_tlspec=$_db_v
    _db_arg toplayerflags ''; _db_tlflags=$_db_v
    _db_arg toplayerfstype ''; _db_tlfs=$_db_v
    _db_arg toplayer_path boot_docker/toplayer; _db_tlpath=$_db_v
    # Only 0 turns it off: a typo keeps the safer default (a copy kept).
    _db_arg dockerboot.previous 1; _db_keep=1
    [ "$_db_v" != 0 ] || _db_keep=0
    # Before anything else: a reserved name is refused, nothing is touched.
    _db_check_rw "$_db_rw" || return 1
    # Boot assessment and fallback (dockerboot-assess.sh, shipped beside the
    # core).  Without it the configured image boots as before, with a warning.
    _db_assess_on=0
    # shellcheck disable=SC1091 # shipped beside the core, checked on its own
    command -v _db_assess >/dev/null 2>&1 \
        || { [ -f "$_db_lx/dockerboot-assess.sh" ] && . "$_db_lx/dockerboot-assess.sh"; }
    if command -v _db_assess >/dev/null 2>&1; then
        _db_assess_on=1
        _db_assess_args || return 1
    else
        _db_note="warning: no $_db_lx/dockerboot-assess.sh in the initramfs: no boot assessment, no fallback (rebuild the initramfs with dockerboot-wizard)"
    fi
    if [ -z "$_db_ref" ] && [ -f "${DOCKERBOOT_CONFIG:-/etc/docker-btrfs.json}" ]; then
        _db_json=$(tr -d '\n\t' <"${DOCKERBOOT_CONFIG:-/etc/docker-btrfs.json}")
        _db_ref=$(printf '%s' "$_db_json" | sed -n 's/.*"docker_image": *"\([^"]*\)".*/\1/p')
        _db_tag=$(printf '%s' "$_db_json" | sed -n 's/.*"docker_tag": *"\([^"]*\)".*/\1/p')
        [ -n "$_db_ref" ] && [ -n "$_db_tag" ] && _db_ref=$_db_ref:$_db_tag
    fi
    [ -n "$_db_ref" ] || { _db_fail "no image configured" \
        "add docker_image=<name:tag> to the kernel command line or rebuild the initramfs"; return 1; }

    # Loaded already by the generator's btrfs support, mostly: a process saved.
    [ -d /sys/fs/btrfs ] || modprobe btrfs >/dev/null 2>&1
    _db_top=$_db_run/root
    _db_mount "$_db_rootspec" btrfs subvolid=5 "$_db_top" root || return 1
    _db_root_mounted=1
    if [ "$_db_tlspec" = "$_db_rootspec" ] && [ -z "$_db_tlflags" ] && [ "${_db_tlfs:-btrfs}" = btrfs ]; then
        _db_tl=$_db_top/$_db_tlpath
    else
        [ "$_db_tlspec" = "$_db_rootspec" ] && _db_tlfs=${_db_tlfs:-btrfs} \
            && _db_tlflags=${_db_tlflags:-subvolid=5}
        _db_mount "$_db_tlspec" "$_db_tlfs" "$_db_tlflags" "$_db_run/toplayer" toplayer || return 1
        _db_tl_mounted=1
        _db_tl=$_db_run/toplayer/$_db_tlpath
    fi

    _db_data=$_db_top/$_db_dpath
    [ -d "$_db_data" ] || { _db_fail "docker data-root $_db_dpath not found on $_db_rootspec" \
        "set docker_path= to docker's data-root relative to the partition's top level"; return 1; }
    # A symlink on the way could lead the rw name anywhere (docker's store).
    _db_nolink "$_db_rw" || { _db_fail "rootflags=subvol=$_db_rw goes through the symlink $_db_x" \
        "name the rw layer's real path"; return 1; }
    if [ "$_db_assess_on" = 1 ]; then
        _db_assess || return 1
    else
        _db_resolve "$_db_data" "$_db_ref" || return 1
    fi

    # Safe swap: the old root stays until the new one is complete.  Each of
    # the three is deleted only if this hook made it (_db_ours).
    _db_rwp=$_db_top/$_db_rw
    _db_newp=$_db_rwp.new _db_old=$_db_rwp.old
    # _db_rwm: the rw layer carries the mark (not only legacy): it may become .previous.
    _db_rwm=0
    if [ -e "$_db_rwp" ]; then
        _db_ours "$_db_rwp" || return 1
        _db_rwm=$_db_own
    fi
    _db_remove "$_db_newp" && _db_remove "$_db_old" || return 1
    [ -d "${_db_newp%/*}" ] || mkdir -p "${_db_newp%/*}"
    _db_o=$(btrfs subvolume snapshot "$_db_sub" "$_db_newp" 2>&1) || { _db_fail \
        "snapshot of $_db_sub failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "check free space on $_db_rootspec (btrfs filesystem usage)"; return 1; }
    _db_new=$_db_newp
    if [ -d "$_db_tl" ]; then
        _db_copy_top || return 1
        _db_merge_accounts "$_db_tl" "$_db_sub" "$_db_new" || { _db_fail \
            "merging the image's users and groups into $_db_f of the new root failed" \
            "check free space on $_db_rootspec (btrfs filesystem usage), or remove $_db_f from the top layer"
            return 1; }
    else
        _db_note="${_db_note:+$_db_note; }no top layer at $_db_tlpath, the image boots unchanged"
    fi
    # After the top layer, which cannot forge what the hook says about this boot.
    if [ "$_db_assess_on" = 1 ]; then _db_assess_root || return 1; fi
    # The mark comes last, after the top layer (which cannot forge it): an
    # unmarked leftover .new of a crash is a snapshot of a docker layer,
    # which _db_legacy accepts.  The mark names the new subvolume's ID (the
    # kernel's answer for the snapshot's own root: 256 or more).  (Each step
    # of the && chain may fail: all go to the ||.)
    # shellcheck disable=SC2015
    _db_x=$(btrfs inspect-internal rootid "$_db_new" 2>/dev/null) \
        && case $_db_x in '' | 0* | *[!0-9]*) false ;; esac && [ "$_db_x" -ge 256 ] \
        && { [ ! -e "$_db_new/$_db_mark" ] && [ ! -L "$_db_new/$_db_mark" ] \
        || rm -f "$_db_new/$_db_mark"; } && { printf '%s\n' "$_db_magic2 $_db_x" >"$_db_new/$_db_mark"; } 2>/dev/null || { _db_fail \
        "cannot mark the new root $_db_rw.new as dockerboot's" \
        "check free space on $_db_rootspec (btrfs filesystem usage)"; return 1; }
    if [ -e "$_db_rwp" ]; then
        mv "$_db_rwp" "$_db_old" 2>/dev/null || { _db_fail \
            "cannot move the old rw layer $_db_rw aside" "delete $_db_rw by hand from the emergency shell"
            return 1; }
    fi
    mv "$_db_new" "$_db_rwp" 2>/dev/null || { mv "$_db_old" "$_db_rwp" 2>/dev/null
        _db_fail "cannot rename $_db_rw.new to $_db_rw" "rename it by hand from the emergency shell"
        return 1; }
    _db_new=
    # .old is the rw layer checked by _db_ours above, moved aside: it becomes
    # .previous, else (off, or something in the way) it is deleted.
    _db_previous
    if [ -e "$_db_old" ] && ! _db_delete "$_db_old"; then
        _db_note="${_db_note:+$_db_note; }warning: could not delete $_db_rw.old (deleted next boot)"
    fi
    if [ "$_db_assess_on" = 1 ]; then _db_assess_state; fi
    return 0
}
