#!/bin/sh
# Never answers: the host kills it at its timeout_seconds (with the sleep, its child).
sleep 600
