# shellcheck shell=sh disable=SC2154,SC2034 # the settings, records and cleanup's state are dockerboot-update's
# shellcheck disable=SC2015 # "a && b || die": die is meant when either fails
# dockerboot-update, moves 2 and 3: the entries every bootloader shows (rEFInd's
# block here, GRUB's and systemd-boot's in grub.sh and sdboot.sh), then the
# generations no entry names.  Sourced by dockerboot-update (POSIX sh).
#
# The block is rendered exactly as the wizard renders it
# (wizard/boot/bootloader.py render_entries); the integration test compares the two.

# cmdline IMAGE NUMBER: the wizard's kernel command line for IMAGE, and the generation.
cmdline() { printf '%s dockerboot.generation=%s' "${tmpl%%@IMAGE@*}$1${tmpl#*@IMAGE@}" "$2"; }

# menu NUMBER LOADER INITRD [PINNED_ID]: what every bootloader's entries
# say (bootloader.menu_entries): e_*1 the default entry, generation NUMBER
# (the tag, or with PINNED_ID a rollback booting that image by ID), e_*2 the
# previous one from p_* (pinned by image ID; e_num2 empty when there is
# none).  Paths from the partition's top level, no leading slash.
menu() {
    e_num1=$1 e_loader1=$boot_dir/$2 e_initrd1=$boot_dir/$3
    if [ -n "${4:-}" ]; then
        e_title1="Docker image $image (rolled back to @$(short "$4"))" e_opts1=$(cmdline "$4" "$1")
    else
        e_title1="Docker image $image" e_opts1=$(cmdline "$image" "$1")
    fi
    e_num2='' e_title2='' e_loader2='' e_initrd2='' e_opts2=''
    # A previous generation of an earlier version (no image ID) gets no entry.
    if [ -n "$p_num" ] && [ -n "$p_id" ]; then
        e_num2=$p_num e_title2="Previous generation $p_num: $p_ref @$(short "$p_id")"
        e_loader2=$boot_dir/$p_loader e_initrd2=$boot_dir/$p_initrd e_opts2=$(cmdline "$p_id" "$p_num")
    fi
    for v in "$e_title1" "$e_loader1" "$e_initrd1" "$e_opts1" "$e_title2" "$e_loader2" "$e_initrd2" "$e_opts2" "$label"; do
        case $v in *\"*|*"$CR"*|*"$NL"*) die "the boot entry value '$v' holds a double quote or a line break" "a boot entry cannot quote those: fix the settings" ;; esac
    done
}

# menuentry TITLE LOADER INITRD OPTIONS: one rEFInd entry.
menuentry() {
    printf 'menuentry "%s" {\n    volume %s\n    loader %s\n    initrd %s\n    options "%s"\n}\n' \
        "$1" "$label" "$2" "$3" "$4"
}

# render: the rEFInd block of menu()'s two entries
# (wizard/boot/bootloader.py render_entries), into $run/block.
render() {
    {
        printf '%s\n' "$BEGIN_MARK"
        menuentry "$e_title1" "$e_loader1" "$e_initrd1" "$e_opts1"
        [ -n "$e_num2" ] && menuentry "$e_title2" "$e_loader2" "$e_initrd2" "$e_opts2"
        printf '%s\n' "$END_MARK"
    } >"$run/block"
}

# holds_entry FILE: FILE is a refind.conf with this partition's block.
holds_entry() {
    grep -q "^[[:blank:]]*# >>> dockerboot-wizard" "$1" 2>/dev/null \
        && grep -Eq "^[[:blank:]]*volume $label$CR?\$" "$1"
}

# find_in DIR: refind_conf = the refind.conf under DIR/EFI/* naming this partition.
find_in() {
    for f in $(find "$1" -maxdepth 3 -type f -iname refind.conf 2>/dev/null | sort); do
        holds_entry "$f" && { refind_conf=$f; return 0; }
    done
    return 1
}

# find_refind [ro]: refind_conf = the refind.conf naming this partition, on
# the ESP find_esp finds (the test hook DOCKERBOOT_REFIND_CONF names one).
# Non-zero (with the one line) when there is none.
find_refind() {
    if [ -n "${DOCKERBOOT_REFIND_CONF:-}" ]; then refind_conf=$DOCKERBOOT_REFIND_CONF; return; fi
    find_esp find_in "${1:-}" && return 0
    printf 'dockerboot-update: error: %s\n' "no refind.conf with the entries of LABEL=$label on any FAT filesystem - mount the ESP (e.g. at /boot/efi), or run dockerboot-wizard apply again" >&2
    return 1
}

# The default entry (bootloader.DEFAULT_LINE): rEFInd's own default is the entry
# booted last, so the block starts with a default_selection naming the default
# entry; a user's own active default_selection lines outside the block (any
# but the wizard's line) are commented out with REPLACED when the saved answer
# is default_entry=yes, put back with default_entry=no, and decide alone
# (no line of ours) while the user never answered.  The patterns are
# bootloader._SETTING and _OURS (rEFInd's keywords ignore case).
DEFAULT_LINE='default_selection "Docker image"'
REPLACED='# dockerboot-wizard --default-entry yes: '
DS='[Dd][Ee][Ff][Aa][Uu][Ll][Tt]_[Ss][Ee][Ll][Ee][Cc][Tt][Ii][Oo][Nn]'
DS_OURS="^[[:blank:]]*${DS}[[:blank:]][[:blank:]]*\"Docker image\"[[:blank:]]*$CR\\{0,1\\}\$"
DS_SET="${DS}[[:blank:]=][[:blank:]=]*[^[:blank:]$CR=#]"

# own: stdin (lines outside the block) to stdout, the user's default_selection
# lines as $decision and the saved answer want them.
own() {
    if [ "$decision" = yes ] && [ "$theirs" -gt 0 ]; then
        LC_ALL=C sed "\|$DS_OURS|!s|^\([[:blank:]]*\)\($DS_SET\)|\1$REPLACED\2|"
    elif [ "${default_entry:-}" = no ]; then
        LC_ALL=C sed "s|^\([[:blank:]]*\)$REPLACED|\1|"
    else
        cat
    fi
}

# splice CONF: CONF with the block in place of the old one, into $run/conf.new;
# every byte outside the block kept (the wizard's bootloader.update_conf) but
# the user's own default_selection lines, as own() says.
splice() {
    b=$(grep -n "^[[:blank:]]*# >>> dockerboot-wizard" "$1" | cut -d: -f1)
    e=$(grep -n "^[[:blank:]]*# <<< dockerboot-wizard" "$1" | cut -d: -f1)
    crlf=$(grep -c "$CR\$" "$1") lf=$(tr -cd '\n' <"$1" | wc -c)
    case $b:$e in
        *"$NL"*|:?*|?*:) die "$1 has malformed dockerboot-wizard markers" \
            "remove the broken '# >>> dockerboot-wizard' block by hand, then run again" ;;
    esac
    [ -z "$b" ] || [ "$e" -gt "$b" ] || die "$1 has malformed dockerboot-wizard markers" \
        "remove the broken '# >>> dockerboot-wizard' block by hand, then run again"
    if [ -z "$b" ]; then outside=$(LC_ALL=C cat "$1"; echo x); else outside=$(LC_ALL=C sed "$b,${e}d" "$1"; echo x); fi
    theirs=$(printf '%s' "${outside%x}" | LC_ALL=C grep -v "$DS_OURS" | LC_ALL=C grep -c "^[[:blank:]]*$DS_SET")
    case ${default_entry:-} in
        yes|no) decision=$default_entry ;;
        *) decision=yes; [ "$theirs" -gt 0 ] && decision=no ;;
    esac
    if [ "$decision" = yes ]; then
        { head -n 1 "$run/block"; printf '%s\n' "$DEFAULT_LINE"; tail -n +2 "$run/block"; } >"$run/block.def"
    else
        cp "$run/block" "$run/block.def"
    fi
    if [ "$crlf" -gt 0 ] && [ $((crlf * 2)) -ge "$lf" ]; then
        sed "s/\$/$CR/" "$run/block.def" >"$run/block.end"
    else
        cp "$run/block.def" "$run/block.end"
    fi
    if [ -z "$b$e" ]; then
        # No block yet: it is appended, on a line of its own.
        { own <"$1"
          if [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ]; then
              if [ "$crlf" -gt 0 ] && [ $((crlf * 2)) -ge "$lf" ]; then printf '\r\n'; else printf '\n'; fi
          fi
          cat "$run/block.end"; } >"$run/conf.new"
        return 0
    fi
    {
        head -n $((b - 1)) "$1" | own
        if [ "$e" = "$(grep -c '' "$1")" ] && [ -n "$(tail -c 1 "$1")" ]; then
            # The block ended the file without a newline: it still does.
            x=$(cat "$run/block.end"); printf '%s' "${x%"$CR"}"
        else
            cat "$run/block.end"
            tail -n +$((e + 1)) "$1" | own
        fi
    } >"$run/conf.new"
}

# write_conf: refind.conf replaced atomically (temp + sync + rename), the old
# one kept as <name>.dockerboot-<UTC time>.bak as the wizard names it.
write_conf() {
    cmp -s "$refind_conf" "$run/conf.new" && { say "$refind_conf: entries unchanged"; return 0; }
    put_file "$refind_conf" "$run/conf.new" 1
    say "$refind_conf: the entries name the new generation (backup: $bak)"
}

# collect: the generations beyond the newest $keep go, unless the hook boots
# their image (last good, booted now); each loses its pin first, then only the
# files its record lists, then the record.  Anything unexpected keeps it.
collect() {
    good='' booted=$(state boot | sed -n 's/^id=//p' | tail -n 1)
    state_id good 0 && good=$s_id
    generations
    # shellcheck disable=SC2086 # one word per number
    set -- $gens
    count=$#
    for n; do
        [ "$count" -le "$keep" ] && break
        count=$((count - 1))
        read_gen "$n" && [ "$g_legacy" = false ] || continue
        if [ "$g_id" = "$good" ] || [ "$g_id" = "$booted" ]; then
            say "kept generation $n: the hook boots its image (@$(short "$g_id"))"; continue
        fi
        # shellcheck disable=SC2086 # $pins: one word per container
        pins=$(docker ps -a -q --filter "label=dockerboot-wizard.pin=$label" \
            --filter "label=dockerboot-wizard.pin.generation=$n" 2>/dev/null) \
            && { [ -z "$pins" ] || docker rm $pins >/dev/null 2>&1; } \
            || { say "old generations kept for now: generation $n's pin cannot be removed"; return 0; }
        for f in $(rec_files "$g_rec"); do
            { [ -f "$g_dir/$f" ] && [ ! -L "$g_dir/$f" ]; } && rm -f -- "$g_dir/$f"
        done
        rm -f -- "$g_rec"
        rmdir "$g_dir" 2>/dev/null || say "left $boot_dir/gen/$n: it holds files the wizard did not make"
        say "removed generation $n"
    done
}
