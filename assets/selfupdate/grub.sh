# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # the settings, entries and esp are dockerboot-update's; GRUB's own $ words
# dockerboot-update, move 2 for GRUB from the image (way a): EFI/dockerboot/grub.cfg
# on the ESP names the new generation, and GRUB's count starts over for it.
# Sourced by dockerboot-update (POSIX sh).
#
# grub.cfg is rendered exactly as the wizard renders it (wizard/loaders/grub.py
# render_cfg, counting_lines) and written as its esp_plan.write_chain writes
# it: owned names the old and the new bytes first, then the file (backup kept),
# then owned the new bytes only.  The signed shim and GRUB on the ESP stay as
# they are (the wizard's `update` copies the image's when they change).  A GRUB
# its distribution set up (way b: the entries in that system's custom.cfg,
# on its own filesystem) is not written from here: the wizard does that.

GRUB_DIR=EFI/dockerboot
GRUB_TRIES=3    # grub.TRIES; the integration test compares the whole file

# grub_here DIR: DIR is an ESP whose EFI/dockerboot/grub.cfg boots this partition.
grub_here() {
    [ -f "$1/$GRUB_DIR/grub.cfg" ] && [ ! -L "$1/$GRUB_DIR/grub.cfg" ] \
        && grep -qxF "    search --no-floppy --label --set=root '$label'" "$1/$GRUB_DIR/grub.cfg"
}

# grub_find [ro]: esp = the ESP whose grub.cfg the wizard wrote for this partition.
grub_find() {
    find_esp grub_here "${1:-}" && return 0
    printf 'dockerboot-update: error: %s\n' "no $GRUB_DIR/grub.cfg for LABEL=$label on any FAT filesystem (this machine boots its distribution's GRUB, whose entries the wizard writes) - run: dockerboot-wizard update --label $label (on this system or another with the wizard), or mount the ESP (e.g. at /boot/efi)" >&2
    return 1
}

# q WORD: WORD as one GRUB script word in single quotes (grub._q).
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# grub_entry ID TITLE LOADER INITRD OPTIONS: one menuentry (grub.menuentry).
grub_entry() {
    printf 'menuentry %s --id %s {\n' "$(q "$2")" "$1"
    printf '    search --no-floppy --label --set=root %s\n' "$(q "$label")"
    printf '    linux /%s' "$3"
    set -f
    # shellcheck disable=SC2086 # one GRUB word per word of the command line
    for w in $5; do printf ' %s' "$(q "$w")"; done
    set +f
    printf '\n    initrd /%s\n}\n' "$4"
}

# grub_counting N: GRUB counts the boots of generation N (grub.counting_lines).
grub_counting() {
    good="(\$dockerboot_root)/$state_dir/generation.grubenv"
    printf '%s\n' "search --no-floppy --label --set=dockerboot_root $(q "$label")" \
        "set dockerboot_good=" \
        "if [ -f $good ]; then load_env --file $good dockerboot_good; fi" \
        "if [ \"\$dockerboot_good\" != \"$1\" ]; then" \
        "    load_env --file \$dockerboot_env dockerboot_trying dockerboot_tries" \
        "    if [ \"\$dockerboot_trying\" != \"$1\" ]; then" \
        "        set dockerboot_trying=$1" \
        "        set dockerboot_tries=$GRUB_TRIES" \
        "    fi" \
        "    if [ \"\$dockerboot_tries\" = \"0\" ]; then" \
        "        set default=1" \
        "        echo \"dockerboot: generation $1 did not come up in $GRUB_TRIES tries: booting the previous generation\""
    k=1
    while [ "$k" -lt "$GRUB_TRIES" ]; do
        printf '%s\n' "    elif [ \"\$dockerboot_tries\" = \"$k\" ]; then" "        set dockerboot_tries=$((k - 1))"
        k=$((k + 1))
    done
    printf '%s\n' "    else" "        set dockerboot_tries=$((GRUB_TRIES - 1))" "    fi" \
        "    save_env --file \$dockerboot_env dockerboot_trying dockerboot_tries" "fi"
}

# grub_render: grub.cfg for menu()'s entries into $run/grub.cfg (grub.render_cfg);
# counting=1: the newest image marks its boots good (systemd).
grub_render() {
    {
        printf '%s\n' "# Written whole by dockerboot-wizard on every apply (the one before is kept" \
            "# as a backup beside it). Your own entries: custom.cfg in this directory." \
            "set timeout=5" "set default=0"
        [ -n "$e_num2" ] && printf 'set fallback=1\n'
        printf 'set dockerboot_env=($root)/%s/grubenv\n' "$GRUB_DIR"
        [ "$counting" = 1 ] && [ -n "$e_num2" ] && grub_counting "$e_num1"
        grub_entry dockerboot-default "$e_title1" "$e_loader1" "$e_initrd1" "$e_opts1"
        [ -n "$e_num2" ] && grub_entry dockerboot-previous "$e_title2" "$e_loader2" "$e_initrd2" "$e_opts2"
        printf 'if [ -f ($root)/%s/custom.cfg ]; then source ($root)/%s/custom.cfg; fi\n' "$GRUB_DIR" "$GRUB_DIR"
    } >"$run/grub.cfg"
}

# grub_env: $run/grubenv = the count for generation e_num1 (grub.plan_env):
# GRUB's own block as it is while it counts that generation already (a
# re-run never resets a count), else a new block with every try left.
grub_env() {
    old=$esp/$GRUB_DIR/grubenv
    if [ ! -L "$old" ] && [ "$(grub_env_value "$old" dockerboot_trying)" = "$e_num1" ]; then
        cp "$old" "$run/grubenv"
        return 0
    fi
    printf '# GRUB Environment Block\ndockerboot_trying=%s\ndockerboot_tries=%s\n' "$e_num1" "$GRUB_TRIES" >"$run/grubenv"
    pad=$((1024 - $(wc -c <"$run/grubenv")))
    head -c "$pad" /dev/zero | tr '\0' '#' >>"$run/grubenv"
}

# grub_names: grub.cfg and the count on the ESP are what grub_render and
# grub_env make, counted or not: whether the image marks its boots good is not
# probed (a container) for an up-to-date run; counting is left as the last tried.
grub_names() {
    grub_env
    cmp -s "$run/grubenv" "$esp/$GRUB_DIR/grubenv" || return 1
    for counting in 1 0; do
        grub_render && cmp -s "$run/grub.cfg" "$esp/$GRUB_DIR/grub.cfg" && return 0
    done
    return 1
}

# grub_check: grub.cfg and the count are the wizard's to replace (grub.plan_chain).
grub_check() {
    for rel in "$GRUB_DIR/grub.cfg" "$GRUB_DIR/grubenv"; do
        owned_ok "$rel" || die "$esp/$rel was not written by dockerboot-wizard (or was changed since)" \
            "move it out of $esp/$GRUB_DIR, then run again"
    done
}

# grub_write: grub.cfg and the count written as the wizard writes them.
grub_write() {
    grub_render && grub_env
    cfg=$esp/$GRUB_DIR/grub.cfg env=$esp/$GRUB_DIR/grubenv
    if cmp -s "$run/grub.cfg" "$cfg" && cmp -s "$run/grubenv" "$env"; then
        say "$cfg: entries unchanged"; return 0
    fi
    grub_check
    esp_space $(($(wc -c <"$run/grub.cfg") + $(wc -c <"$cfg") + 2048 + 262144))
    # owned first with the old and the new bytes: a kill leaves files the next run owns.
    new_d=$(sha "$run/grub.cfg")
    owned_now "$run/owned.in"
    # shellcheck disable=SC2046 # owned_old prints one digest or nothing
    owned_edit "$run/owned.in" "$GRUB_DIR/grubenv" - $(owned_old "$GRUB_DIR/grubenv") >"$run/owned.mid"
    # shellcheck disable=SC2046
    owned_edit "$run/owned.mid" "$GRUB_DIR/grub.cfg" "$new_d" $(owned_old "$GRUB_DIR/grub.cfg") >"$run/owned"
    owned_write "$run/owned"
    put_file "$cfg" "$run/grub.cfg" 1
    say "$cfg: the entries name generation $e_num1${bak:+ (backup: $bak)}"
    if ! cmp -s "$run/grubenv" "$env"; then
        put_file "$env" "$run/grubenv" 1
        say "$env: GRUB counts generation $e_num1's boots from $GRUB_TRIES"
    fi
    owned_edit "$run/owned.in" "$GRUB_DIR/grubenv" - >"$run/owned.mid"
    owned_edit "$run/owned.mid" "$GRUB_DIR/grub.cfg" "$new_d" >"$run/owned"
    owned_write "$run/owned"
}

# grub_entries: for status, e_default and e_previous = the generations the
# first and second linux lines of grub.cfg load (bootchain.grub_status);
# e_known=1 once it was read.  The ESP is mounted read-only when it is not
# mounted yet.  Way (b)'s custom.cfg, on another system's filesystem: not read.
grub_entries() {
    grub_find ro 2>/dev/null || { problem "GRUB's files on the ESP not read: no $GRUB_DIR/grub.cfg for LABEL=$label on any FAT filesystem"; return 0; }
    name_entries <<END
$(sed -n 's/^[[:blank:]]*linux[[:blank:]]\{1,\}\/\([^[:blank:]]\{1,\}\).*/\1/p' "$esp/$GRUB_DIR/grub.cfg")
END
}

# grub_env_value FILE KEY: KEY's value in the GRUB environment block FILE, if a number.
grub_env_value() {
    [ -f "$1" ] && [ "$(head -n 1 "$1")" = "# GRUB Environment Block" ] || return 0
    v=$(sed -n "2,\$s/^$2=//p" "$1" | tail -n 1)
    case $v in ''|*[!0-9]*) ;; *) printf '%s' "$v" ;; esac
}

# grub_assessment_json: the "assessment" of a machine GRUB counts (grub_status's words).
grub_assessment_json() {
    g_esp='' g_trying='' g_left=''
    if [ -n "$e_known" ]; then
        g_esp=$esp
        g_trying=$(grub_env_value "$esp/$GRUB_DIR/grubenv" dockerboot_trying)
        g_left=$(grub_env_value "$esp/$GRUB_DIR/grubenv" dockerboot_tries)
    fi
    g_good=$(grub_env_value "$top/$state_dir/generation.grubenv" dockerboot_good)
    printf '{"bootloader_counts": true, "why": %s, "grub": {"esp": %s, "trying": %s, "tries_left": %s, "good_generation": %s}}' \
        "$(js "GRUB counts the boots of the newest generation in $GRUB_DIR/grubenv on the ESP: $GRUB_TRIES without the booted system's good mark, then it boots the previous generation (also when the kernel panics before the hook)")" \
        "$(if [ -n "$g_esp" ]; then js "$g_esp"; else printf null; fi)" "${g_trying:-null}" "${g_left:-null}" "${g_good:-null}"
}
