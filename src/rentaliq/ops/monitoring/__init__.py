"""An environment's monitoring picture, read through the CloudWatch, RDS and S3 APIs (`rentaliq top`, `rentaliq report`).

Everything goes through ``Target.client``, so the same code reads the local cloud and a real AWS account:

- ``models``     the frozen dataclasses a snapshot is made of, and their JSON form
- ``catalog``    which metrics matter (the spec's RDS and S3 lists, their units and statistics) and for which
                 resources: the env's DB instance and its replicas, its buckets
- ``reader``     one batched GetMetricData call for every series of the window
- ``alarms``     the env's alarms (``rentaliq-{env}-`` prefix) and their history
- ``units``      values in the units people read (GiB, ms, %)
- ``sparkline``  a series as a line of block characters (the terminal view)
- ``svg_plot``   a series as an inline SVG plot with axes, units and time labels (the HTML report)
- ``spec_table`` the env spec's values next to what the live instance has
- ``html_report`` the self-contained HTML page

Nothing here prints; the CLI (``rentaliq.cli.monitoring_cmds``) renders.
"""
