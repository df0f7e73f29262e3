{#
  Write-audit-publish for the marts (see dbt_project.yml). Run at the end of every invocation: when no
  model or test of it errored or failed, every mart it built as <name>__audit is published as
  marts.<name>, all marts in one explicit transaction (dbt-duckdb runs on-run-end hooks in autocommit,
  so without it a crash could leave some marts published and not others; tests/test_publish_crash.py):
  - a build that covers every date the published table holds (a first load, a whole-range backfill, a
    build without a window) replaces it: by a rename on the DuckDB file (no copy of the rows), by one
    copy on the lake (the build was in dbt's own memory, generate_database_name.sql);
  - otherwise the window's rows are replaced (delete + insert).
  On the lake the staging views the build made are published too (create or replace), so analysts and a
  later build that selects no view find them there (prepare_unselected_models.sql).
  Otherwise nothing is published: marts.<name> keeps the window's last good content, and
  marts.<name>__audit holds the failed build for diagnosis until the next run (on the lake a copy of it,
  the build itself being gone with dbt's process).

  The first thing it does is log PUBLISH_GATE_MESSAGE: there a gated dbt (internals/dbt_launcher.py)
  waits until its step holds the lake's publish lock, so everything below, the reads that decide how to
  publish included, happens under it.
#}
{% macro publish_marts(results) %}
  {%- if execute -%}
    {{ log("flightdeck: ready to publish", info=True) }}
    {%- set failed = [] -%}
    {%- set built = [] -%}
    {%- set views = [] -%}
    {%- for result in results -%}
      {%- if result.status in ('error', 'fail', 'runtime error') -%}
        {%- do failed.append(result.node.unique_id) -%}
      {%- elif result.node.resource_type == 'model' and result.status == 'success' -%}
        {%- if result.node.fqn[1] == 'marts' and result.node.config.materialized == 'table' -%}
          {%- do built.append(result.node) -%}
        {%- elif result.node.config.materialized == 'view' and result.node.database != target.database -%}
          {%- do views.append(result.node) -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if failed -%}
      {{ log("not published: " ~ failed | join(", ") ~ " failed; marts.<mart>__audit holds the failed build", info=True) }}
      {%- for node in built if node.database != target.database %}
        create schema if not exists {{ target.database }}.{{ node.schema }};
        create or replace table {{ target.database }}.{{ node.schema }}.{{ node.alias }} as select * from {{ node.database }}.{{ node.schema }}.{{ node.alias }};
      {%- endfor %}
    {%- elif built or views -%}
      {%- set windowed = var('min_date') and var('max_date') -%}
      {%- set names = built | map(attribute='name') | list -%}
      {#- A mart built from another mart's audit table that this build did not rebuild would publish from
          a stale or failed build: refuse it. -#}
      {%- for node in built -%}
        {%- for parent in node.depends_on.nodes -%}
          {%- set upstream = graph.nodes.get(parent) -%}
          {%- if upstream and upstream.resource_type == 'model' and upstream.fqn[1] == 'marts' and upstream.name not in names -%}
            {{ exceptions.raise_compiler_error("not published: " ~ node.name ~ " was built from " ~ upstream.name ~ "__audit, which this build did not rebuild; build the marts together") }}
          {%- endif -%}
        {%- endfor -%}
      {%- endfor %}
      {%- set share = share_host_cores() | trim %}
        {% if share %}{{ share }};{% endif %}
        begin transaction;
        {%- for node in views %}
          {#- A view published to the lake reads the lake: other views of the build are named as published. -#}
          {%- set sql = namespace(text=node.compiled_code) -%}
          {%- for other in views -%}
            {%- set sql.text = sql.text | replace(other.relation_name, adapter.quote(target.database) ~ '.' ~ adapter.quote(other.schema) ~ '.' ~ adapter.quote(other.alias)) -%}
          {%- endfor -%}
          {%- if adapter.quote(node.database) ~ '.' in sql.text -%}
            {{ exceptions.raise_compiler_error("not published: the view " ~ node.name ~ " reads a table of the build (" ~ node.database ~ "), not of the lake") }}
          {%- endif %}
        create schema if not exists {{ target.database }}.{{ node.schema }};
        create or replace view {{ target.database }}.{{ node.schema }}.{{ node.alias }} as {{ sql.text }};
        {%- endfor %}
        {%- if built %}
        create schema if not exists {{ target.database }}.marts;
        {%- endif %}
        {%- for node in built %}
          {#- Qualified by database: on the DuckLake the published marts live in the attached lake, the
              build's audit tables in dbt's own in-memory database. -#}
          {%- set published = target.database ~ '.' ~ node.schema ~ '.' ~ node.name -%}
          {%- set audit = node.database ~ '.' ~ node.schema ~ '.' ~ node.alias -%}
          {%- set column = node.config.get('partition_column', 'flight_date') -%}
          {%- set covers = true -%}
          {%- if windowed -%}
            {%- set exists = run_query("select count(*) from duckdb_tables() where database_name = '" ~ target.database ~ "' and schema_name = '" ~ node.schema ~ "' and table_name = '" ~ node.name ~ "'").columns[0].values()[0] -%}
            {%- if exists -%}
              {%- set outside = run_query("select count(*) from (select 1 from " ~ published ~ " where not (" ~ in_partition_window(column) ~ ") limit 1)").columns[0].values()[0] -%}
              {%- set covers = outside == 0 -%}
            {%- endif -%}
          {%- endif -%}
          {%- if covers and node.database == target.database %}
        drop table if exists {{ published }};
        alter table {{ audit }} rename to {{ node.name }};
          {%- elif covers %}
        create or replace table {{ published }} as select * from {{ audit }};
          {%- else %}
        delete from {{ published }} where {{ in_partition_window(column) }};
        insert into {{ published }} by name select * from {{ audit }};
          {%- endif %}
        {%- endfor %}
        {#- On the lake the publish is one snapshot; its commit names the run and the marts, which is what
            the lake_rollback job undoes by (flightdeck/lake.py, rollback_publish). -#}
        {%- if target.name == 'lake' %}
        {%- set info = tojson({"run_id": env_var("FLIGHTDECK_RUN_ID", ""), "marts": names}) %}
        call {{ target.database }}.set_commit_message('flightdeck', 'publish marts', extra_info => '{{ info | replace("'", "''") }}');
        {%- endif %}
        {#- Crash tests (tests/test_publish_crash.py) name a marker file here: the publish writes it, then
            keeps its transaction open (a long count) until the test has killed the process. Never set
            otherwise. -#}
        {%- set crash_marker = env_var('FLIGHTDECK_CRASH_TEST_PUBLISH_MARKER', '') %}
        {%- if crash_marker %}
        copy (select 'publishing') to '{{ crash_marker }}' (format csv);
        select count(*) from range(1000000000000) where hash(range) = 0;
        {%- endif %}
        commit;
      {{ log("published " ~ (names + views | map(attribute='name') | list) | join(", "), info=True) }}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
