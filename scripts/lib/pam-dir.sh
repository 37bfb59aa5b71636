# Sourced by scripts/install.sh and scripts/test-install.sh: the directory
# holding pam_unix.so, where install.sh puts the module (prints nothing and
# fails when there is none).
pam_module_dir() {
    local d
    for d in /lib/*/security /usr/lib/*/security /lib/security /usr/lib/security /lib64/security /usr/lib64/security; do
        if [ -e "$d/pam_unix.so" ]; then echo "$d"; return 0; fi
    done
    return 1
}
