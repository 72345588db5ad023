# shellcheck shell=sh disable=SC2154 # the settings and records come from dockerboot-update
# dockerboot-update status: the partition's status inside the booted system.
# Sourced by dockerboot-update (POSIX sh).
#
# The JSON is the wizard's (`dockerboot-wizard status --json`, schema
# docs/status-json.md, version 1), made from the same sources: the
# generation records, the hook's state files, /proc/cmdline and docker.
# The integration test compares the two documents key by key.

# js VALUE: VALUE as a JSON string ("" is null): backslash and quote escaped,
# each control character as \u00XX (the value kept, as Python's json.dumps).
# One sed script, made once when sourced; the lines joined (\u000a).
JS_SED='s/\\/\\\\/g; s/"/\\"/g; s/\n/\\u000a/g' i=1
while [ "$i" -lt 32 ]; do
    # shellcheck disable=SC2059 # the octal escape is the format
    [ "$i" = 10 ] || JS_SED="$JS_SED; s/$(printf "\\$(printf %o "$i")")/\\\\u00$(printf %02x "$i")/g"
    i=$((i + 1))
done
js() {
    [ -n "$1" ] || { printf null; return; }
    printf '"%s"' "$(printf '%s' "$1" | sed -e ':a' -e '$!N' -e '$!ba' -e "$JS_SED")"
}

# jn VALUE: VALUE as a JSON number: ASCII digits without leading zeros
# (010 is no JSON), else null.
jn() {
    case $1 in ''|*[!0-9]*) printf null; return ;; esac
    v=$1
    while :; do case $v in 0?*) v=${v#0} ;; *) break ;; esac; done
    printf '%s' "$v"
}

# problem TEXT: one line of the document's "problems" (collected in a file:
# the parts of the document are made in subshells).
problem() { printf '%s\n' "$*" >>"$run/problems"; }

# state NAME: the hook's state file NAME, never through a symlink, else nothing.
state() {
    d=$top
    for p in $(printf '%s' "$state_dir" | tr / ' ') "$1"; do
        d=$d/$p
        [ -L "$d" ] && { problem "$d is a symlink: not read"; return 0; }
    done
    [ ! -e "$d" ] || [ -f "$d" ] || { problem "$d is not a regular file: not read"; return 0; }
    [ -f "$d" ] && head -c 4096 "$d"
}

# state_id NAME COUNT: the image ID a state file holds ("<id>", or "<id> <n>"
# when COUNT is 1), as s_id and s_n; a problem line when it does not parse.
state_id() {
    s_text=$(state "$1") s_id='' s_n=''
    [ -n "$s_text" ] || return 1
    # shellcheck disable=SC2086 # its words
    set -- "$1" "$2" $s_text
    if is_id "${3:-}" && { [ "$2" = 0 ] || case ${4:-} in ''|*[!0-9]*) false ;; esac; }; then
        s_id=$3 s_n=${4:-}
        return 0
    fi
    problem "state file $1 holds '$(printf '%s' "$s_text" | head -n 1 | cut -c 1-80)': ignored"
    return 1
}

ASSESS_WHY="rEFInd does not count boots: a generation whose kernel or initramfs cannot reach the hook boots again; pick Previous generation in rEFInd's menu"

# failed_reason: f_why = the reason of a bad mark, the second line of the
# state file failed (s_text, read by state_id) when printable ASCII, else ''.
failed_reason() {
    f_why=''
    [ -n "$f_id" ] || return 0
    f_why=$(printf '%s\n' "$s_text" | sed -n 2p)
    [ -z "$(printf '%s' "$f_why" | LC_ALL=C tr -d ' -~')" ] || f_why=''
}

# gen_json N: generation N as a generation object.
gen_json() {
    read_gen "$1" || { printf null; return; }
    printf '{"number": %s, "kernel_version": %s, "image_ref": %s, "image_id": %s, "created": %s, ' \
        "$1" "$(js "$g_kver")" "$(js "$g_ref")" "$(js "$g_id")" "$(js "$g_created")"
    printf '"legacy": %s, "pinned": %s, "loader": %s, "initrd": %s, ' \
        "$g_legacy" "$g_pinned" "$(js "$g_loader")" "$(js "$g_initrd_path")"
    if [ -n "$g_gen" ]; then
        printf '"inputs": {"generator": %s, "kernel_version": %s, "assets": %s}}' \
            "$(js "$g_gen")" "$(js "$g_kv_in")" "$(js "$g_assets")"
    else
        printf '"inputs": null}'
    fi
}

# booted_generation KERNEL REF ID RECORDED: b_gen, b_src = the generation that
# booted: the hook's record of it (generation= in state/boot), else the
# entry's dockerboot.generation= on the command line, else the newest one of
# that kernel (of that image, for the "previous" entry booting by ID).  A
# number no generation has any more is not taken.
booted_generation() {
    b_gen='' b_src=''
    case $4 in ''|*[!0-9]*|???????*) ;; *)
        case " $gens " in *" $4 "*) b_gen=$4 b_src=state; return ;; esac ;;
    esac
    v=$(tr ' ' '\n' <"${DOCKERBOOT_CMDLINE:-/proc/cmdline}" 2>/dev/null | sed -n 's/^dockerboot\.generation=//p' | tail -n 1)
    case " $gens " in *" $v "*) [ -n "$v" ] && { b_gen=$v b_src=cmdline; return; } ;; esac
    same='' byid=''
    for n in $gens; do
        read_gen "$n" && [ "$g_kver" = "$1" ] || continue
        same=$n
        [ "$g_id" = "$3" ] && byid=$n
    done
    case $2 in sha256:*) [ -n "$byid" ] && same=$byid ;; esac
    [ -n "$same" ] && b_gen=$same b_src=kernel
}

booted_json() {
    boot=$(state boot)
    [ -n "$boot" ] || { printf null; return; }
    ref=$(printf '%s\n' "$boot" | sed -n 's/^ref=//p' | tail -n 1)
    [ -n "$ref" ] || { problem "state file boot names no ref: ignored"; printf null; return; }
    for k in id configured_id kernel tries fallback generation source; do
        eval "b_$k=\$(printf '%s\\n' \"\$boot\" | sed -n 's/^$k=//p' | tail -n 1)"
    done
    for k in id configured_id; do
        eval "v=\$b_$k"
        [ -z "$v" ] || is_id "$v" || { problem "state file boot has an invalid $k: ignored"; eval "b_$k=''"; }
    done
    is_kver "$b_kernel" || b_kernel=''
    # What booted (the hook's source=): wizard/boot/status.py _SOURCES.
    case $b_source in configured|good|good-root|generation|generation-root) ;; *) b_source='' ;; esac
    b_tries=$(jn "$b_tries")
    reason=${b_fallback#* }
    booted_generation "$b_kernel" "$ref" "$b_id" "$b_generation"
    printf '{"ref": %s, "id": %s, "configured_id": %s, "kernel": %s, "tries": %s, ' \
        "$(js "$ref")" "$(js "$b_id")" "$(js "$b_configured_id")" "$(js "$b_kernel")" "$b_tries"
    printf '"fallback": %s, "fallback_reason": %s, "generation": %s, "generation_source": %s, ' \
        "$([ -n "$b_fallback" ] && echo true || echo false)" "$(js "$reason")" \
        "${b_gen:-null}" "$(js "$b_src")"
    printf '"source": %s}' "$(js "$b_source")"
}

# roots_json: dockerboot's copies of the fallback images (boot_docker/roots,
# made by the hook and the wizard: wizard/boot/roots.py), as the wizard lists
# them: a directory named by the image's 64 hex digits, no symlink, holding a
# v2 mark; whether collection keeps it (the last good image, a generation's
# image); the space it alone holds (btrfs filesystem du; null without
# btrfs-progs).  Anything else there is a problem line, left as it is.
roots_json() {
    d=$top
    for p in boot_docker roots; do
        d=$d/$p
        if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then
            problem "$d is a symlink or no directory: dockerboot's copies not read"
            printf '[]'; return 0
        fi
        [ -d "$d" ] || { printf '[]'; return 0; }
    done
    keep=" $good "
    for n in $gens; do read_gen "$n" && keep="$keep$g_id "; done
    sep=''
    printf '['
    for r in "$d"/* "$d"/.[!.]* "$d"/..?*; do
        [ -e "$r" ] || [ -L "$r" ] || continue
        name=${r##*/} mark=''
        [ -d "$r" ] && [ ! -L "$r" ] && [ -f "$r/.dockerboot-rwlayer" ] && [ ! -L "$r/.dockerboot-rwlayer" ] \
            && mark=$(head -c 128 "$r/.dockerboot-rwlayer" 2>/dev/null | head -n 1)
        case $name in *[!0-9a-f]*) mark='' ;; esac
        if [ "${#name}" = 64 ] && case $mark in 'dockerboot-rwlayer v2 '*) true ;; *) false ;; esac; then
            case $keep in *" sha256:$name "*) kept=true ;; *) kept=false ;; esac
            bytes=$(btrfs filesystem du -s --raw "$r" 2>/dev/null | sed -n '2s/^ *[0-9][0-9]* *\([0-9][0-9]*\) .*/\1/p')
            printf '%s{"id": "sha256:%s", "kept": %s, "exclusive_bytes": %s}' "$sep" "$name" "$kept" "$(jn "$bytes")"
            sep=', '
        else
            problem "boot_docker/roots/$name is not a copy of dockerboot's: left as it is"
        fi
    done
    printf ']'
}

# entries: what the bootloader will really boot: e_default, e_previous = the
# generations whose kernels the first and second loader lines of the
# wizard's block in refind.conf name (empty: none on the partition); e_known=1
# once the block was read (wizard/boot/status.py read_entries).  No
# refind.conf with the block (no ESP found): not known.  The ESP is mounted
# read-only when it is not mounted yet.
entries() {
    e_known='' e_default='' e_previous=''
    case $bootloader in
        grub) grub_entries; return 0 ;;
        systemd-boot) sdboot_entries; return 0 ;;
    esac
    find_refind ro 2>/dev/null || return 0
    [ -f "$refind_conf" ] || return 0
    b=$(grep -n "^[[:blank:]]*# >>> dockerboot-wizard" "$refind_conf" | cut -d: -f1)
    e=$(grep -n "^[[:blank:]]*# <<< dockerboot-wizard" "$refind_conf" | cut -d: -f1)
    [ -n "$b$e" ] || return 0
    case $b:$e in *"$NL"*|:?*|?*:) problem "$refind_conf has malformed dockerboot-wizard markers: its entries not read"; return 0 ;; esac
    [ "$e" -gt "$b" ] || { problem "$refind_conf has malformed dockerboot-wizard markers: its entries not read"; return 0; }
    name_entries <<EOF
$(sed -n "${b},${e}p" "$refind_conf" | tr -d "$CR" | sed -n 's/^[[:blank:]]*loader[[:blank:]]\{1,\}\([^[:blank:]]\{1,\}\).*/\1/p')
EOF
}

# name_entries: e_default, e_previous = the generations whose kernels the
# first two non-empty lines of stdin name (paths from the partition's top
# level, as every bootloader's entries give them); e_known=1.
name_entries() {
    e_known=1 i=0
    while IFS= read -r l; do
        [ -n "$l" ] || continue
        i=$((i + 1))
        v=$(for n in $gens; do read_gen "$n" && [ "$boot_dir/$g_loader" = "$l" ] && { printf '%s' "$n"; break; }; done)
        if [ "$i" = 1 ]; then e_default=$v; else e_previous=$v; break; fi
    done
}

# rollback_json: the newest generation's rollback (rollback_state), or null.
rollback_json() {
    [ -n "$rb_num" ] || { printf null; return; }
    printf '{"generation": %s, "image_id": %s, "since": %s, "from": [' "$rb_num" "$(js "$n_id")" "$(js "$n_created")"
    sep=''
    for i in $rb_from; do printf '%s%s' "$sep" "$(js "$i")"; sep=', '; done
    printf '], "holds": %s}' "${rb_holds:-null}"
}

# pending: the tag now ($t_id, empty: unknown) against the newest generation
# and the entries (docker: a probe container when the tag is not the newest
# generation's image), as changed, build, update (true/false/null), unnamed
# and reasons (one a line) - wizard/boot/status.py _pending, same words.
pending() {
    reasons='' changed=null build=null unnamed='' t_gen='' t_kver=''
    if [ -n "$e_known" ] && [ -n "$n_num" ] && [ "$e_default" != "$n_num" ]; then
        unnamed=$n_num
        reasons="generation $n_num is not named by the boot entries yet (an earlier run stopped): the next update names it$NL"
    fi
    if [ -n "$t_id" ]; then
        changed=false
        { [ -z "$n_num" ] || [ "$t_id" != "$n_id" ]; } && changed=true
    fi
    if [ -n "$rb_num" ]; then
        reasons="$reasons$(rollback_line)$NL"
    elif [ "$changed" = true ]; then
        reasons="${reasons}the tag moved: $(if [ -n "$n_num" ]; then short "$n_id"; else echo unknown; fi) -> $(short "$t_id")$NL"
    fi
    if [ "$changed" = false ]; then
        t_gen=$n_gen t_kver=$n_kver t_assets=$(conf "assets_$(printf '%s' "$n_gen" | tr - _)")
    elif [ "$changed" = true ] && t=$( (probe "$t_id" && printf '%s %s %s' "$t_gen" "$t_kver" "$t_assets") 2>/dev/null); then
        t_gen=${t%% *} t_kver=${t#* } t_kver=${t_kver%% *} t_assets=${t##* }
    fi
    if [ -n "$t_gen" ]; then
        changes
        build=false
        [ -n "$changes" ] && build=true reasons="$reasons$changes$NL"
    fi
    # The default entry boots the tag: a new image with the same inputs boots as it is.
    follow=false
    if [ -n "$rb_num" ]; then
        [ "$rb_holds" = false ] && [ "$changed" = true ] && follow=true
    else
        [ -z "$n_num" ] && [ "$changed" = true ] && follow=true
    fi
    if [ "$changed" = true ] && [ -n "$n_num" ] && [ -z "$rb_num" ] && [ "$build" = false ]; then
        reasons="${reasons}the next boot snapshots @$(short "$t_id") with generation $n_num: no update needed$NL"
    fi
    update=false
    if [ "$build" = true ] || [ "$follow" = true ] || [ -n "$unnamed" ]; then update=true
    elif [ "$changed" = null ] && [ "$build" = null ]; then update=null; fi
}

pending_json() {
    pending
    printf '{"tag_id": %s, "image_changed": %s, "build_needed": %s, "kernel_version": %s, "update": %s, "unnamed": %s, "reasons": [' \
        "$(js "$t_id")" "$changed" "$build" "$(js "$t_kver")" "$update" "${unnamed:-null}"
    sep=''
    printf '%s' "$reasons" | while IFS= read -r r; do printf '%s%s' "$sep" "$(js "$r")"; sep=', '; done
    printf ']}'
}

# status_common: what both forms of status read first.
status_common() {
    generations
    newest_two
    : >"$run/problems"
    t_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)
    is_id "$t_id" || t_id=''
    rollback_state
    entries
}

status_json() {
    status_common
    good='' f_id='' f_n=''
    state_id good 0 && good=$s_id
    state_id failed 1 && f_id=$s_id f_n=$s_n
    failed_reason
    printf '{"version": 1, "label": %s, "image": %s, "state_dir": %s,\n' \
        "$(js "$label")" "$(js "$image")" "$(js "$state_dir")"
    printf ' "booted": %s,\n' "$(booted_json)"
    if [ -n "$good" ]; then printf ' "last_good": {"id": %s},\n' "$(js "$good")"; else printf ' "last_good": null,\n'; fi
    if [ -n "$f_id" ]; then
        printf ' "failed": {"id": %s, "tries": %s, "reason": %s},\n' "$(js "$f_id")" "$(jn "$f_n")" "$(js "$f_why")"
    else
        printf ' "failed": null,\n'
    fi
    # rEFInd counts no boots (wizard/boot/status.py ASSESSMENT, same words); GRUB
    # and systemd-boot do (bootchain.grub_status, sdboot.status).
    case $bootloader in
        grub) printf ' "assessment": %s,\n' "$(grub_assessment_json)" ;;
        systemd-boot) printf ' "assessment": %s,\n' "$(sdboot_assessment_json)" ;;
        *) printf ' "assessment": {"bootloader_counts": false, "why": %s},\n' "$(js "$ASSESS_WHY")" ;;
    esac
    printf ' "generation": %s,\n' "$(if [ -n "$n_num" ]; then gen_json "$n_num"; else printf null; fi)"
    printf ' "previous": %s,\n' "$(if [ -n "$p_num" ]; then gen_json "$p_num"; else printf null; fi)"
    printf ' "generations": ['
    sep=''
    for n in $gens; do printf '%s%s' "$sep" "$(gen_json "$n")"; sep=', '; done
    printf '],\n'
    if [ -n "$e_known" ]; then
        printf ' "entries": {"default": %s, "previous": %s},\n' "${e_default:-null}" "${e_previous:-null}"
    else
        printf ' "entries": null,\n'
    fi
    printf ' "rollback": %s,\n "pending": %s,\n' "$(rollback_json)" "$(pending_json)"
    printf ' "roots": %s,\n "problems": [' "$(roots_json)"
    sep=''
    while IFS= read -r line; do printf '%s%s' "$sep" "$(js "$line")"; sep=', '; done <"$run/problems"
    printf ']}\n'
}

# status_text: the same as the wizard's `status` text (wizard/boot/status.py summary).
status_text() {
    status_common
    say "LABEL=$label: $image"
    if [ -n "$e_known" ]; then d=$e_default p=$e_previous; else d=$n_num p=$p_num; fi
    if [ -n "$d" ] && read_gen "$d"; then
        say "default entry: generation $d, kernel $g_kver, image @$(short "$g_id")$([ "$g_pinned" = true ] && echo ' (pinned: a rollback)')"
    elif [ -n "$e_known" ]; then
        say "default entry: names no generation on the partition"
    fi
    [ -n "$p" ] && read_gen "$p" && say "previous entry: generation $p, kernel $g_kver, image @$(short "$g_id")"
    boot=$(state boot)
    [ -n "$boot" ] && say "last boot: $(printf '%s\n' "$boot" | sed -n 's/^ref=//p') @$(short "$(printf '%s\n' "$boot" | sed -n 's/^id=//p')") on kernel $(printf '%s\n' "$boot" | sed -n 's/^kernel=//p')$(printf '%s\n' "$boot" | sed -n 's/^fallback=..*/ - FALLBACK: &/p')"
    case $(printf '%s\n' "$boot" | sed -n 's/^source=//p') in *-root)
        say "  booted from dockerboot's own copy: docker no longer has that image" ;; esac
    good=''
    state_id good 0 2>/dev/null && good=$s_id
    [ -n "$good" ] && say "last good image: @$(short "$good")"
    f_id=''
    state_id failed 1 2>/dev/null && f_id=$s_id f_n=$s_n
    failed_reason
    [ -n "$f_id" ] && say "image @$(short "$f_id") is not booted while configured: $(
        if [ -n "$f_why" ]; then echo "marked bad ($f_why)"; else echo "tried $(jn "$f_n") times and never marked good"; fi)"
    roots_json | tr '{' '\n' | sed -n 's/^"id": "sha256:\(.\{12\}\)[^"]*", "kept": \([a-z]*\), "exclusive_bytes": \([0-9a-z]*\)}.*/\1 \2 \3/p' \
        | while read -r r_id r_kept r_bytes; do
            say "dockerboot's copy of @$r_id: $([ "$r_kept" = true ] && echo kept || echo 'collected at the next update')$([ "$r_bytes" = null ] || echo ", holds $r_bytes bytes of its own")"
        done
    if [ "$bootloader" = grub ]; then
        grub_assessment_json >/dev/null   # g_trying, g_left, g_good
        [ -z "$g_trying" ] || say "GRUB: generation $g_trying, ${g_left:-?} tries left; marked good: generation ${g_good:-none yet}"
    fi
    pending
    if [ "$update" = true ]; then
        say "update pending: $(printf '%s' "$reasons" | sed -e ':a' -e '$!N' -e '$!ba' -e 's/\n/; /g')$(
            if [ "$build" = true ]; then echo ' (a build is needed)'; else echo ' (no build)'; fi)"
        say "  run: dockerboot-update"
    elif [ "$update" = false ]; then
        say "up to date$(printf '%s' "$reasons" | while IFS= read -r r; do printf '; %s' "$r"; done)"
    elif [ -n "$rb_num" ]; then
        say "$(rollback_line)"
    fi
    while IFS= read -r line; do say "problem: $line"; done <"$run/problems"
}
