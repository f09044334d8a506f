"""Validate compose files against the Compose spec and check their commands against the real CLIs.

usage: check_compose.py BIN_DIR|'' FILE...

With BIN_DIR, every `--flag` in a service's `command:` must appear in `<binary> <subcommand> --help`,
where the binary is the service image's entrypoint (miner, validator or devnet).
"""
import subprocess
import sys

import compose_spec


def entrypoint_binary(service_name, service):
    entry = service.get("entrypoint")
    if entry:
        return entry[0].rsplit("/", 1)[-1]
    build = service.get("build") or {}
    dockerfile = build.get("dockerfile", "") if isinstance(build, dict) else ""
    if dockerfile.endswith("Dockerfile.miner"):
        return "miner"
    if dockerfile.endswith("Dockerfile.validator"):
        return "validator"
    return None


def main():
    bin_dir = sys.argv[1]
    failures = []
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        compose = compose_spec.PyCompose.from_yaml(text)  # raises with the offending key on bad input
        compose.validate()
        spec = compose.to_dict()
        for name, service in spec.get("services", {}).items():
            command = service.get("command")
            binary = entrypoint_binary(name, service)
            if not bin_dir or not command or binary is None:
                continue
            if isinstance(command, str):
                command = command.split()
            flags = [c.split("=", 1)[0] for c in command if c.startswith("--")]
            sub = [] if binary == "devnet" else [command[0]]
            help_text = subprocess.run(
                [f"{bin_dir}/{binary}", *sub, "--help"], capture_output=True, text=True, check=False
            ).stdout
            for flag in flags:
                if flag not in help_text:
                    failures.append(f"{path}: service {name}: `{binary} {' '.join(sub)}` has no flag {flag}")
        print(f"  {path}: {len(spec.get('services', {}))} services, valid")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
