"""``python -m likeness.ray embed|build|serve``: the three steps of a sharded
gallery on a Ray cluster from the shell. Connects to ``--address`` (or
``RAY_ADDRESS``, or a cluster started with ``ray start`` on this machine;
else starts a local one). Exit codes: 0 done, 2 error (the message says
what is wrong), 130 interrupted."""
import argparse
import json
import signal
import sys
import time

from . import BATCH_WAIT_S, MAX_BATCH_SIZE


def _parser():
    p = argparse.ArgumentParser(prog="python -m likeness.ray", description=__doc__.split("\n\n")[0])
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, a local "
                                     "`ray start` cluster, else a new local one)")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("embed", help="embed a source in N shards, one Ray task each "
                                     "(`likeness embed --shard i/N`)")
    e.add_argument("--model", required=True, help="trained model folder")
    e.add_argument("--data", required=True, help="image folder, CSV manifest or IDX file")
    e.add_argument("--out", required=True, help="output folder: shard-XXXX/ and shards.json")
    e.add_argument("--shards", type=int, required=True, help="number of shards")
    e.add_argument("--num-cpus", type=float, default=1, help="CPUs per task (its threads)")
    e.add_argument("--num-gpus", type=float, default=0, help="GPUs per task (CUDA when > 0)")
    e.add_argument("--batch", type=int, default=256, help="images per forward pass")
    e.add_argument("--binary", help="the likeness binary on every node (default: "
                                    "LIKENESS_BIN, else `likeness` on PATH)")
    e.add_argument("--force", action="store_true", help="replace an existing shards.json")

    b = sub.add_parser("build", help="build one index per shard, one Ray task each")
    b.add_argument("--shards", required=True, help="shards.json (from `embed`)")
    b.add_argument("--out", required=True, help="output folder: shard-XXXX/ and cluster.json")
    # `likeness build`'s options; each left out takes likeness.build's default.
    b.add_argument("--metric", choices=["cosine", "l2"])
    b.add_argument("--m", type=int, help="HNSW links per node")
    b.add_argument("--ef-construction", type=int)
    b.add_argument("--seed", type=int)
    b.add_argument("--store", choices=["f32", "f16", "i8"])
    b.add_argument("--quantile", type=float)
    b.add_argument("--builder", choices=["native", "hnsw_rs"])
    b.add_argument("--num-cpus", type=float, default=1, help="CPUs per task (its threads)")
    b.add_argument("--force", action="store_true", help="replace an existing cluster.json")

    s = sub.add_parser("serve", help="serve the shards with Ray Serve (likeness serve's API)")
    s.add_argument("--cluster", required=True, help="cluster.json (from `build`)")
    s.add_argument("--replicas", type=int, default=1, help="replicas per shard")
    s.add_argument("--max-replicas-per-node", type=int,
                   help="at most this many replicas of a shard per node (1: spread)")
    s.add_argument("--host", default="127.0.0.1", help="HTTP address (loopback by default)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--route-prefix", default="/")
    s.add_argument("--shard-timeout-s", type=float, default=5.0,
                   help="a shard slower than this is reported in missing_shards")
    s.add_argument("--max-batch-size", type=int, default=MAX_BATCH_SIZE,
                   help="requests per batch sent to every shard (1: no batching)")
    s.add_argument("--batch-wait-ms", type=float, default=BATCH_WAIT_S * 1e3,
                   help="how long a request waits for others to share its batch")
    s.add_argument("--http", choices=["direct", "proxy"], default="direct",
                   help="direct: the ingress listens itself; proxy: through Serve's proxy")
    return p


def _interrupt(*_):
    raise KeyboardInterrupt


def main(argv=None):
    args = _parser().parse_args(argv)
    import ray

    from . import ShardError, build_sharded, embed_sharded, serve_sharded

    try:
        ray.init(address=args.address, logging_level="WARNING")
        if args.command == "embed":
            t = time.perf_counter()
            doc = embed_sharded(args.model, args.data, args.out, shards=args.shards,
                                num_gpus=args.num_gpus, num_cpus=args.num_cpus,
                                batch=args.batch, binary=args.binary, force=args.force)
            print(f"embedded {doc['count']} items of dimension {doc['dim']} in "
                  f"{len(doc['shards'])} shards in {time.perf_counter() - t:.1f}s into {args.out}")
        elif args.command == "build":
            t = time.perf_counter()
            options = {k: getattr(args, k) for k in
                       ("metric", "m", "ef_construction", "seed", "store", "quantile", "builder")
                       if getattr(args, k) is not None}
            doc = build_sharded(args.shards, args.out, num_cpus=args.num_cpus,
                                force=args.force, **options)
            print(f"built {len(doc['shards'])} shard indexes of {doc['count']} items "
                  f"({doc['metric']}) in {time.perf_counter() - t:.1f}s into {args.out}")
        else:
            serve_sharded(args.cluster, replicas=args.replicas, route_prefix=args.route_prefix,
                          shard_timeout_s=args.shard_timeout_s, host=args.host, port=args.port,
                          max_replicas_per_node=args.max_replicas_per_node,
                          max_batch_size=args.max_batch_size,
                          batch_wait_timeout_s=args.batch_wait_ms / 1e3, http=args.http)
            url = f"http://{args.host}:{args.port}{args.route_prefix.rstrip('/')}"
            print(json.dumps({"serving": url, "cluster": args.cluster}), flush=True)
            print(f"serving {args.cluster} at {url}/search (Ctrl-C stops)", file=sys.stderr)
            signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as Ctrl-C does
            while True:
                time.sleep(3600)
    except ShardError as e:
        print(f"likeness.ray: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"likeness.ray: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "serve":
            from ray import serve

            serve.delete("likeness")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
