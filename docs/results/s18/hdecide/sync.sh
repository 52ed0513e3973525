#!/bin/bash
# sync.sh: this helper's files of /work/main onto /tmp/hdecide-after (8bf69e8 + them only), natives rebuilt
cd /work/main
for f in $(git diff --name-only 8bf69e8 -- scorer/pipeline/{decide,scoring,outcome,batch,inference,records,deadletter}.py scorer/alerts scorer/inference scorer/native/{_findings.c,_findings.pyi,findings.py,_forest.c,_forest.pyi,_trees.c,_trees.pyi,_scorebuf.h}) \
         $(git diff --name-only -- scorer/pipeline/{decide,scoring,outcome,batch,inference,records,deadletter}.py scorer/alerts scorer/inference scorer/native/{_findings.c,_findings.pyi,findings.py,_forest.c,_forest.pyi,_trees.c,_trees.pyi,_scorebuf.h}); do
  cp $f /tmp/hdecide-after/$f
done
(cd /tmp/hdecide-after && git status --short)
