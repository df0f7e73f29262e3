{#
  Write-audit-publish for the marts (see dbt_project.yml). Run at the end of every invocation: when no
  model or test of it errored or failed, every mart it built into marts_audit replaces its window in
  marts.* (delete + insert), all marts in one explicit transaction (dbt-duckdb runs on-run-end hooks in
  autocommit, so without it a crash could leave some marts published and not others; tested by
  tests/test_publish_crash.py); a build without a window replaces them whole.
  Otherwise nothing is published: marts.* keeps the window's last good content, and marts_audit holds
  the failed build for diagnosis.
#}
{% macro publish_marts(results) %}
  {%- if execute -%}
    {%- set failed = [] -%}
    {%- set built = [] -%}
    {%- for result in results -%}
      {%- if result.status in ('error', 'fail', 'runtime error') -%}
        {%- do failed.append(result.node.unique_id) -%}
      {%- elif result.node.resource_type == 'model' and result.node.fqn[1] == 'marts'
            and result.node.config.materialized == 'table' and result.status == 'success' -%}
        {%- do built.append(result.node) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if failed -%}
      {{ log("not published: " ~ failed | join(", ") ~ " failed; marts_audit holds the failed build", info=True) }}
    {%- elif built -%}
      {%- set windowed = var('min_date') and var('max_date') -%}
        begin transaction;
        create schema if not exists marts;
        {%- for node in built %}
          {%- if windowed %}
        create table if not exists marts.{{ node.name }} as select * from {{ node.schema }}.{{ node.name }} limit 0;
        delete from marts.{{ node.name }} where {{ in_partition_window(node.config.get('partition_column', 'flight_date')) }};
        insert into marts.{{ node.name }} by name select * from {{ node.schema }}.{{ node.name }};
          {%- else %}
        create or replace table marts.{{ node.name }} as select * from {{ node.schema }}.{{ node.name }};
          {%- endif %}
        {%- endfor %}
        {#- Crash tests (tests/test_publish_crash.py) name a marker file here: the publish writes it, then
            keeps its transaction open (a long count) until the test has killed the process. Never set
            otherwise. -#}
        {%- set crash_marker = env_var('FLIGHTDECK_CRASH_TEST_PUBLISH_MARKER', '') %}
        {%- if crash_marker %}
        copy (select 'publishing') to '{{ crash_marker }}' (format csv);
        select count(*) from range(1000000000000) where hash(range) = 0;
        {%- endif %}
        commit;
      {{ log("published " ~ built | map(attribute='name') | join(", ") ~ " into marts", info=True) }}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
