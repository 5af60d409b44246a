"""Write expected.json: what real Prefect 2.20 says about every function in the case files of this directory.

Each case file is imported exactly as `prefect deployment build` imports it
(`load_flow_from_entrypoint`), and `Deployment.build_from_flow`'s facts are
recorded per function: the flow name, the version, `parameter_schema(flow).dict()`
(pydantic 2), and the same schema in pydantic 1's dialect (Prefect's own v1 code
path, used when a flow takes a pydantic.v1 model; null where that path fails).
Functions that are not flows are listed under "not_flows".

Run it with Prefect 2.20's interpreter (never the dev venv), from the repository root:

    /work/prefect2-venv/bin/python tests/unit/flowscan_cases/generate_expected.py
"""
from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import prefect
import prefect.utilities.callables as callables
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.utilities.importtools import load_script_as_module

HERE = Path(__file__).resolve().parent
MARKER = HERE / "writes_on_import.marker"


def v1_schema(flow: Flow):
    original = callables.has_v1_type_as_param
    callables.has_v1_type_as_param = lambda signature: True
    try:
        return callables.parameter_schema(flow).dict()
    except Exception:  # pydantic 1 cannot type some annotations (e.g. a bare `None`)
        return None
    finally:
        callables.has_v1_type_as_param = original


def main() -> None:
    assert prefect.__version__ == "2.20.27", prefect.__version__
    os.chdir(HERE)  # relative entrypoints, as `prefect deployment build` uses them
    sys.dont_write_bytecode = True  # no __pycache__ among the cases
    os.environ["FLOWSCAN_GENERATOR"] = "1"
    MARKER.unlink(missing_ok=True)
    expected = {}
    for path in sorted(HERE.glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_bytes())
        names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        module = load_script_as_module(path.name)
        flows, not_flows = {}, []
        for name in names:
            if not isinstance(getattr(module, name, None), Flow):
                not_flows.append(name)
                continue
            obj = load_flow_from_entrypoint(f"{path.name}:{name}", use_placeholder_flow=False)
            flows[name] = {"flow_name": obj.name, "version": obj.version,
                           "schema": callables.parameter_schema(obj).dict(), "schema_pydantic_v1": v1_schema(obj)}
        expected[path.name] = {"flows": flows, "not_flows": not_flows}
    assert MARKER.is_file(), "writes_on_import.py did not write its marker when imported"
    MARKER.unlink()
    os.environ.pop("FLOWSCAN_GENERATOR")
    try:
        load_flow_from_entrypoint("raises_on_import.py:survives", use_placeholder_flow=False)
    except Exception:
        pass
    else:
        sys.exit("raises_on_import.py did not raise when imported")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'expected.json'}: {sum(len(v['flows']) for v in expected.values())} flows")


if __name__ == "__main__":
    main()
