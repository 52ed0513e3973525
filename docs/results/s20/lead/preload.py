import argparse, asyncio, json, os, sys
from pathlib import Path
from scorer.bench.consume import _preload
args = argparse.Namespace(bootstrap="127.0.0.1:9092", events=int(sys.argv[1]), partitions=3, stream="realistic",
                          attack_share=0.01, data_dir=Path(os.environ.get("SCORER_DATA_DIR", "../shared/data")))
topics, out = asyncio.run(_preload(args))
print(json.dumps(topics))
