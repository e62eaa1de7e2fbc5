#!/bin/sh
# Submits analyze.sbatch as an array and analyze-merge.sbatch to run once every task of it has
# succeeded (afterok on an array waits for all of its tasks).
#
#   REPO=s3://my-bucket/pythia-12b-deduped OUT=/shared/pythia-12b-deduped-analysis ./submit-analyze.sh
set -eu
: "${REPO:?set REPO}" "${OUT:?set OUT}"
here=$(dirname "$0")
JOBID=$(sbatch --parsable "$here/analyze.sbatch")
JOBID=${JOBID%%;*}
sbatch --dependency=afterok:"$JOBID" "$here/analyze-merge.sbatch"
echo "analyze array $JOBID; merge after it"
