"""The main job: the life of a model, replayed through Airflow's scheduler day by day.

``lifecycle`` drives the runs (bootstrap, then each monitored day), ``traffic`` is the replay
client that sends a day's events to the serving API, ``main`` puts them together for
``airloop demo``. Not orchestration: everything goes through Airflow's REST API and the serving
API, as a user's own tooling would.
"""
