# dockerboot-assess.sh — boot assessment and fallback to the last good image
# (DESIGN §4b).  Sourced by dockerboot_main (dockerboot-core.sh) from
# DOCKERBOOT_LIBEXEC; defines functions only.  POSIX sh, busybox ash
# compatible, `set -u` clean; names start with _db like the core's.
#
# Kernel parameters:
#   dockerboot.state=<dir>  state directory relative to the partition's top
#                           level (boot_docker/state, made mode 0700)
#   dockerboot.tries=<N>    boots in a row an image may take without being
#                           marked good (2; 0 turns the count off)
#   init=<path>             the init an image must have (/sbin/init)
#   dockerboot.generation=<n>  the generation the boot entry boots (the
#                           wizard's entries pass it), only recorded
# Environment (tests): DOCKERBOOT_KVER, the running kernel's version
#   (default /proc/sys/kernel/osrelease, what `uname -r` prints).
#
# State files, each written whole (a temporary file, then mv); image IDs are
# "sha256:<64 hex>", as `docker images --no-trunc` shows them:
#   attempt  "<id> <n>": the image this hook booted last and how many boots
#            in a row tried it without it being marked good (0 for an image
#            without systemd: nothing can mark it, its boots are not counted)
#   good     "<id>": the image of the last boot the booted system marked good
#            (dockerboot-mark-good, which also writes attempt "<id> 0")
#   failed   "<id> <n>": a configured image that reached N boots without
#            being marked good, or was marked bad (dockerboot-mark-good: a
#            failed boot-complete.target or unit, or dockerboot-mark-bad;
#            then n = N and a second line says why, which the fallback line
#            repeats).  While it stays configured the good image
#            boots instead and its count stays at n: it is not tried again
#            until the tag moves to another image, this file is deleted or
#            dockerboot.tries= is raised above n.
#   boot     key=value lines about this boot (ref, id, configured_id,
#            fallback, kernel, tries, generation, source: configured, good,
#            good-root, generation or generation-root, see dockerboot-roots.sh);
#            also /etc/dockerboot/boot in the new root.
#   chains   "<id hex> <ChainID hex>" lines: the top layers of the images
#            this boot resolved, so the next boot need not compute them
#            again (_db_resolve_id; a line that does not fit is ignored).
#
# An image is bootable when it resolves, has an executable init (the init=
# path, /sbin/init by default) and a lib/modules/<running kernel> directory,
# both resolved inside its own subvolume (_db_follow).  The configured image
# boots when it is bootable and not failed; else the good image boots when
# it is bootable, with ONE line saying why (then the generation's image and
# dockerboot's own copies: _db_fallback); else the original one-line error
# stops the boot (a configured image that only ran out of tries still boots,
# there being nothing better).  The image equal to good never runs out.
# shellcheck shell=sh disable=SC2154,SC2015 # the core and its parts set the _db_
# variables; "A && B || C" is meant so: C runs when A or B fails

# _db_assess_args: read and check the parameters (nothing is mounted yet).
_db_assess_args() {
    _db_arg dockerboot.state boot_docker/state
    _db_use="use a directory of its own below the top level, e.g. dockerboot.state=boot_docker/state"
    { _db_norm "$_db_v" && [ -n "$_db_n" ]; } || { _db_fail \
        "dockerboot.state=$_db_v names the top level or contains .." "$_db_use"; return 1; }
    _db_state=$_db_n
    _db_norm "$_db_dpath" || _db_n=$_db_dpath
    { _db_overlap "$_db_state" "$_db_n" || _db_overlap "$_db_state" "$_db_rw"; } && { _db_fail \
        "dockerboot.state=$_db_v is, holds or lies inside docker's data-root or the rw layer" \
        "$_db_use"; return 1; }
    _db_arg dockerboot.tries 2
    _db_num "$_db_v" 2; _db_max=$_db_v
    _db_arg init /sbin/init; _db_init=$_db_v
    # Recorded for `dockerboot-wizard status`: a plain number of at most 6
    # digits or nothing (the value lands in a key=value file, whole lines).
    _db_arg dockerboot.generation ''; _db_gen=$_db_v
    case $_db_gen in *[!0-9]*) _db_gen= ;; esac
    [ "${#_db_gen}" -le 6 ] || _db_gen=
    _db_kver=${DOCKERBOOT_KVER:-}
    [ -n "$_db_kver" ] || { read -r _db_kver </proc/sys/kernel/osrelease; } 2>/dev/null
    _db_kver=${_db_kver:-}
    return 0
}

# _db_num TEXT DEFAULT: _db_v = TEXT as a decimal number, else DEFAULT.
_db_num() {
    _db_v=$1
    case $_db_v in '' | *[!0-9]*) _db_v=$2; return 0 ;; esac
    while :; do case $_db_v in 0?*) _db_v=${_db_v#0} ;; *) break ;; esac; done
}

# _db_rd FILE: _db_sid (a valid image ID or '') and _db_sn (a number, 0 when
# absent) from the state file FILE.  `read` is a built-in: no process.
_db_rd() {
    _db_sid='' _db_sn='' _db_x=''
    { read -r _db_sid _db_sn _db_x <"$_db_sdir/$1"; } 2>/dev/null
    _db_x=${_db_sid#sha256:}
    case $_db_sid in sha256:*) ;; *) _db_sid= ;; esac
    case $_db_x in *[!0-9a-f]*) _db_sid= ;; esac
    [ "${#_db_x}" = 64 ] || _db_sid=
    _db_num "${_db_sn:-}" 0; _db_sn=$_db_v
}

# _db_id12 ID: _db_v = the first 12 hex digits of ID (as `docker images`).
_db_id12() { _db_v=${1#sha256:}; _db_v=${_db_v%"${_db_v#????????????}"}; }

# _db_inside SUB DIR: _db_T = the directory DIR of the image SUB as the
# kernel resolves it (cd -P: a built-in, no process) when that stays inside
# SUB; else non-zero, and _db_follow decides (one readlink per symlink).
_db_inside() {
    _db_pwd=$PWD
    cd -P "$1/$2" 2>/dev/null || return 1
    _db_T=$PWD
    # Back where the caller was (its relative paths); nothing to do if gone.
    cd "$_db_pwd" 2>/dev/null || :
    case $_db_T in "$1") _db_T= ;; "$1"/*) _db_T=${_db_T#"$1"/} ;; *) return 1 ;; esac
}

# _db_bootable SUB: the image resolved to SUB (named _db_ref) has its init
# and the running kernel's modules, both resolved inside SUB (an absolute
# symlink starts at SUB); else _db_why and _db_err (via _db_fail).
_db_bootable() {
    _db_fr=$1 _db_x=${_db_init%/*}
    if _db_inside "$1" "${_db_x:-/}"; then
        _db_x=${_db_T:+$_db_T/}${_db_init##*/}
        if [ -L "$1/$_db_x" ]; then
            _db_l=$(readlink "$1/$_db_x") && [ -n "$_db_l" ] && _db_follow "$_db_T" "$_db_l" || _db_T=/
        else
            _db_T=$_db_x
        fi
    else
        _db_follow '' "$_db_init" || _db_T=/
    fi
    { [ -f "$1/$_db_T" ] && [ -x "$1/$_db_T" ]; } || {
        _db_why="has no init ($_db_init)"
        _db_fail "image $_db_ref has no executable init $_db_init" \
            "install an init system in the image (e.g. systemd-sysv), or name its init with init="
        return 1; }
    [ -z "$_db_kver" ] && return 0
    _db_inside "$1" "lib/modules/$_db_kver" \
        || { _db_follow '' "lib/modules/$_db_kver" && [ -d "$1/$_db_T" ]; } || {
        _db_why="has no /lib/modules/$_db_kver for the running kernel"
        _db_fail "image $_db_ref has no /lib/modules/$_db_kver for the running kernel $_db_kver" \
            "build the kernel and initramfs from this image again (dockerboot-wizard), or boot an image that has them"
        return 1; }
}

# _db_assess: choose the image to boot.  Sets _db_sub and _db_ref (the image
# to snapshot), _db_bid (its ID), _db_cref/_db_conf (the configured ref and
# its ID or ''), _db_fb (why this boot fell back, or ''), _db_tries and
# _db_newfail (a "failed" line to write, or '').  Non-zero after one line.
_db_assess() {
    _db_sdir=$_db_top/$_db_state
    _db_nolink "$_db_state" || { _db_fail "dockerboot.state=$_db_state goes through the symlink $_db_x" \
        "name the state directory's real path"; return 1; }
    # The ChainIDs of the boot before (at most 8 well-formed lines).
    _db_chains=$_db_nl _db_chused='' _db_x=$_db_sdir/chains _db_cn=0
    if [ -f "$_db_x" ] && [ ! -L "$_db_x" ]; then
        while [ "$_db_cn" -lt 8 ] && read -r _db_y _db_z _db_w; do
            _db_cn=$((_db_cn + 1))
            case $_db_y$_db_z in *[!0-9a-f]*) continue ;; esac
            [ "${#_db_y}" = 64 ] && [ "${#_db_z}" = 64 ] && [ -z "$_db_w" ] || continue
            _db_chains="$_db_chains$_db_y $_db_z$_db_nl"
        done <"$_db_x"
    fi 2>/dev/null
    _db_rd good; _db_good=$_db_sid
    _db_rd attempt; _db_aid=$_db_sid _db_an=$_db_sn
    _db_rd failed; _db_fid=$_db_sid _db_fn=$_db_sn
    _db_cref=$_db_ref _db_conf='' _db_fb='' _db_why='' _db_err='' _db_newfail='' _db_out=0
    _db_from=configured _db_fbw=''
    _db_roots=0
    _db_roots_ok && _db_roots=1
    _db_gen_image
    _db_quiet=1
    if _db_resolve "$_db_data" "$_db_ref"; then
        _db_conf=sha256:$_db_id _db_csub=$_db_sub _db_cnref=$_db_ref
        if _db_bootable "$_db_sub" && [ "$_db_conf" != "$_db_good" ] && [ "$_db_max" -gt 0 ]; then
            if [ "$_db_fid" = "$_db_conf" ] && [ "$_db_fn" -ge "$_db_max" ]; then
                _db_out=$_db_fn
                # A bad mark (dockerboot-mark-good) gives its reason on line 2.
                _db_y=''
                { read -r _db_x && IFS= read -r _db_y; } <"$_db_sdir/failed" 2>/dev/null
                [ -z "$_db_y" ] || _db_why="was marked bad ($_db_y)"
            elif [ "$_db_aid" = "$_db_conf" ] && [ "$_db_an" -ge "$_db_max" ]; then
                _db_out=$_db_an _db_newfail="$_db_conf $_db_an"
            fi
            [ "$_db_out" = 0 ] || _db_why=${_db_why:-"was tried $_db_out times and never marked good"}
        fi
    fi
    _db_quiet=0
    if [ -n "$_db_why" ]; then
        _db_cwhy=$_db_why _db_cerr=$_db_err
        # The good image, pinned by ID, must be bootable itself.
        # The last good image, then the generation's (dockerboot-roots.sh),
        # each pinned by ID, from docker's store or dockerboot's own copy.
        _db_quiet=1
        if _db_fallback; then
            _db_quiet=0
            _db_id12 "$_db_bid"
            printf 'dockerboot: %s: %s — booting %s %s instead\n' \
                "$_db_cref" "$_db_cwhy" "$_db_fbw" "$_db_v" >&2
            _db_fb="$_db_cref $_db_cwhy"
        elif [ "$_db_out" != 0 ]; then
            # Out of tries but sound, and nothing better: boot it anyway.
            _db_quiet=0 _db_newfail='' _db_sub=$_db_csub _db_ref=$_db_cnref _db_bid=$_db_conf _db_from=configured
            _db_note="${_db_note:+$_db_note; }warning: $_db_cref $_db_cwhy, and there is no good image to fall back to"
        else
            # _db_err: the configured image's line (dockerboot-stale.sh says it too).
            _db_quiet=0 _db_err=$_db_cerr
            printf '%s\n' "$_db_err" >&2
            return 1
        fi
    else
        _db_bid=$_db_conf
    fi
    _db_tries=1
    [ "$_db_aid" = "$_db_bid" ] && _db_tries=$((_db_an + 1))
    return 0
}

# _db_put FILE TEXT: write TEXT to FILE, a path in the new root whose
# directory is real (resolved by _db_follow); an existing FILE is replaced,
# never written through.
_db_put() {
    { [ ! -e "$1" ] && [ ! -L "$1" ]; } || rm -f "$1" 2>/dev/null || return 1
    { printf '%s' "$2" >"$1"; } 2>/dev/null
}

# _db_assess_root: tell the new root about this boot: /etc/dockerboot/boot,
# the login message of a fallback, and the unit that marks the boot good
# (when the image has systemd).  The rw layer is new at every boot: all of
# it is done again every time.  Directories are resolved inside the new
# root, the missing ones made by one mkdir; files are written by the shell.
# An image without systemd gets no unit, so nothing marks its boots good or
# bad: its tries are not counted (attempt "<id> 0", tries=0 in the boot
# file), or it would be reverted after dockerboot.tries= boots for lack of
# a mark it cannot get; one line of its own says so (_db_unassessed, said
# by _db_assess_state once the boot is sure to go on: a failure says one
# line only).
_db_assess_root() {
    _db_fr=$_db_sub _db_unit=dockerboot-mark-good.service _db_sdl='' _db_unassessed=''
    # systemd: its unit directory, or systemd itself, in the image (the top
    # layer's own units make an etc/systemd/system in every new root); cd -P
    # first: no process unless the kernel's answer leaves the image.
    if _db_inside "$_db_sub" etc/systemd/system \
        || { [ -d "$_db_sub/etc/systemd/system" ] && _db_follow '' etc/systemd/system \
            && [ -d "$_db_sub/$_db_T" ]; } \
        || { _db_inside "$_db_sub" lib/systemd && [ -f "$_db_sub/$_db_T/systemd" ]; } \
        || { [ -f "$_db_sub/lib/systemd/systemd" ] && _db_follow '' lib/systemd/systemd \
            && [ -f "$_db_sub/$_db_T" ]; }; then
        if [ -f "$_db_lx/dockerboot-mark-good" ] && [ -f "$_db_lx/$_db_unit" ]; then
            _db_sdl="usr/local/lib/dockerboot etc/systemd/system etc/systemd/system/multi-user.target.d"
        else
            _db_note="${_db_note:+$_db_note; }warning: the initramfs lacks $_db_lx/dockerboot-mark-good or $_db_unit: this boot will not be marked good"
        fi
    else
        _db_tries=0
        _db_id12 "$_db_bid"
        [ "$_db_from" = configured ] && _db_v=$_db_cref
        _db_unassessed="image $_db_v has no systemd: its boots are not assessed (nothing marks it good or bad)"
    fi
    _db_fr=$_db_new
    _db_kv="ref=$_db_cref${_db_nl}id=$_db_bid${_db_nl}configured_id=$_db_conf${_db_nl}fallback=$_db_fb$_db_nl"
    _db_kv="${_db_kv}kernel=$_db_kver${_db_nl}tries=$_db_tries${_db_nl}generation=$_db_gen$_db_nl"
    _db_kv="${_db_kv}source=$_db_from$_db_nl"
    _db_use="check free space on $_db_rootspec (btrfs filesystem usage), or what the image has there"
    set --
    for _db_x in etc/dockerboot ${_db_fb:+etc/profile.d} $_db_sdl; do
        _db_follow '' "$_db_x" || { _db_fail "cannot write /$_db_x of the new root: the image has a symlink loop there" \
            "fix the image's symlink"; return 1; }
        case $_db_x in
            etc/dockerboot) _db_dk=$_db_new/$_db_T ;;
            etc/profile.d) _db_dp=$_db_new/$_db_T ;;
            usr/local/lib/dockerboot) _db_d1=$_db_new/$_db_T ;;
            etc/systemd/system) _db_d2=$_db_new/$_db_T ;;
            *) _db_d3=$_db_new/$_db_T ;;
        esac
        [ -d "$_db_new/$_db_T" ] || set -- "$@" "$_db_new/$_db_T"
    done
    { [ "$#" = 0 ] || mkdir -p "$@" 2>/dev/null; } && _db_put "$_db_dk/boot" "$_db_kv" \
        || { _db_fail "cannot write /etc/dockerboot/boot into the new root" "$_db_use"; return 1; }
    _db_msg=etc/profile.d/dockerboot-fallback.sh
    if [ -n "$_db_fb" ]; then
        _db_id12 "$_db_bid"
        _db_q "dockerboot: this boot fell back to $_db_fbw $_db_v: $_db_fb"
        _db_put "$_db_dp/${_db_msg##*/}" \
            "# Written by the dockerboot hook at boot: this boot is a fallback.${_db_nl}printf '%s\\n' $_db_v >&2$_db_nl" \
            || { _db_fail "cannot write /$_db_msg into the new root" "$_db_use"; return 1; }
    elif _db_follow '' "$_db_msg" && { [ -e "$_db_new/$_db_T" ] || [ -L "$_db_new/$_db_T" ]; }; then
        # An image made from a booted system may carry yesterday's message.
        rm -f "$_db_new/$_db_T" 2>/dev/null
    fi
    [ -n "$_db_sdl" ] || return 0
    # One process: the unit and a drop-in that pulls it in (instead of a
    # .wants link) are written by the shell, the script is copied by the
    # initramfs's own cp (busybox: it starts faster than coreutils', and the
    # hook's own file has no xattrs to keep).  Nothing is written through a
    # symlink of the image (_db_put, and rm before cp).
    _db_slurp "$_db_lx/$_db_unit"
    { _db_put "$_db_d2/$_db_unit" "$_db_v" \
        && _db_put "$_db_d3/${_db_unit%.service}.conf" \
            "# Written by the dockerboot hook at every boot: the boot is marked good once the system is up.${_db_nl}[Unit]${_db_nl}Wants=$_db_unit$_db_nl" \
        && { { [ ! -e "$_db_d1/mark-good" ] && [ ! -L "$_db_d1/mark-good" ]; } || rm -f "$_db_d1/mark-good"; } \
        && cp "$_db_lx/dockerboot-mark-good" "$_db_d1/mark-good"; } >/dev/null 2>&1 \
        || { _db_fail "cannot install $_db_unit into the new root" "$_db_use"; return 1; }
}

# _db_slurp FILE: _db_v = the text of FILE, one of the hook's own small
# files (read is a built-in: no process).
_db_slurp() {
    _db_v=
    while IFS= read -r _db_l || [ -n "$_db_l" ]; do
        _db_v=$_db_v$_db_l$_db_nl
    done <"$1"
}

# _db_assess_state: record this boot on the partition (after the swap: a
# boot that stops earlier is no attempt).  Each file is written in .new,
# then all are renamed by one mv (each rename is atomic).  A failure is a
# warning only.  The boot goes on from here: an unassessed image is said.
_db_assess_state() {
    [ -z "${_db_unassessed:-}" ] || printf 'dockerboot: %s\n' "$_db_unassessed" >&2
    _db_x=$_db_sdir/.new
    # chains last: the others are renamed first whatever stands at its name.
    set -- "$_db_x/attempt" "$_db_x/boot" ${_db_newfail:+"$_db_x/failed"} "$_db_x/chains"
    # -m for the state directory and .new (both named): their parents are boot_docker's.
    # shellcheck disable=SC2174
    { [ -d "$_db_x" ] || mkdir -p -m 0700 "$_db_sdir" "$_db_x" 2>/dev/null; } \
        && { printf '%s\n' "$_db_bid $_db_tries" >"$1" && printf '%s' "$_db_kv" >"$2" \
            && printf '%s' "$_db_chused" >"$_db_x/chains" \
            && { [ -z "$_db_newfail" ] || printf '%s\n' "$_db_newfail" >"$3"; }; } 2>/dev/null \
        && mv -f "$@" "$_db_sdir/" 2>/dev/null \
        || _db_note="${_db_note:+$_db_note; }warning: cannot record this boot in $_db_state (no boot assessment, no fallback)"
}
