"""`ctrnn-jax import-keras`: Keras models (SimpleRNN + Dense) into one ensemble.npz."""

from pathlib import Path

from ..models._activations import ACTIVATIONS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import-keras",
        help="read Keras models (SimpleRNN + Dense) into one ensemble.npz",
        description="Read Keras models, each a SimpleRNN followed by a Dense readout (Keras 2 or 3 "
        "whole-model .h5/.hdf5, Keras 3 .keras, or weights-only .weights.h5), into one "
        "ensemble.npz (alpha = 1; members in the order given). Needs h5py: "
        "pip install 'ctrnn-ensembles[keras]'.",
    )
    p.add_argument("models", type=Path, nargs="+", metavar="MODEL_FILE", help="Keras model or weights files")
    p.add_argument("--out", type=Path, default=Path("ensemble.npz"), help="output .npz (default: ensemble.npz)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out replace a file that is not an ensemble, or the ensemble.npz of a run folder",
    )
    p.add_argument(
        "--activation",
        default=None,
        choices=tuple(ACTIVATIONS),
        help="the SimpleRNN's activation for weights-only files (not stored there; default: tanh); "
        "files with the architecture use their own",
    )
    p.set_defaults(func=run, prog=p.prog)


def run(args) -> int:
    from ..io._lock import lock_outputs
    from ..io._outputs import check_output_file

    with lock_outputs(
        files=[check_output_file(args.out, "ensemble", option="--out", sources=args.models, overwrite=args.overwrite)],
        what=args.prog,
    ):
        return _run(args)


def _run(args) -> int:
    from ..io._keras import load_keras
    from ..io._outputs import check_output_file, is_run_folder
    from ..io._serialisation import save_npz

    check_output_file(args.out, "ensemble", option="--out", sources=args.models, overwrite=args.overwrite)
    if is_run_folder(args.out.parent) and not args.overwrite:
        raise FileExistsError(
            f"--out {args.out}: is in the run folder {args.out.parent}; replacing its ensemble "
            "would leave its checkpoint and results of other weights. Choose another file, or "
            "pass --overwrite."
        )
    ensemble = load_keras(args.models, activation=args.activation)
    save_npz(ensemble, args.out)
    k, n, m = ensemble.W_in.shape
    print(
        f"{k} network(s) (M = {m} inputs, N = {n} units, O = {ensemble.W_out.shape[1]} outputs, "
        f"{ensemble.activation}, alpha = 1) written to {args.out}"
    )
    return 0
