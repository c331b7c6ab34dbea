# Sourced by scripts/demo and scripts/test: make sure .venv exists and holds abmigrate[dev].
# Installs only when pyproject.toml changed since the last install, so reruns are fast.
venv=$root/.venv
stamp=$venv/.abmigrate-dev-installed

if [[ ! -x $venv/bin/python ]]; then
    echo "setting up: creating $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi

if [[ ! -f $stamp || $root/pyproject.toml -nt $stamp ]]; then
    echo "setting up: installing abmigrate[dev] into $venv" >&2
    log=$venv/.abmigrate-pip-install.log
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev]" \
        </dev/null >"$log" 2>&1; then
        cat "$log" >&2
        echo "setting up: pip install failed (log: $log)" >&2
        exit 2
    fi
    touch "$stamp"
fi
