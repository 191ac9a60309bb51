//! The GraphiQL page `GET /graphql` serves to a browser.
//!
//! Policy: the page loads nothing from the internet. Its scripts and styles (React's and
//! GraphiQL's production builds) are served by SeatGrid itself under the path the caller gives
//! (command-api's `http::docs::ASSETS`); queries and mutations go to [`crate::GRAPHQL_PATH`],
//! subscriptions to [`crate::GRAPHQL_WS_PATH`] over graphql-transport-ws. A token is given in
//! GraphiQL's headers tab (`{"Authorization": "Bearer ..."}`; `scripts/token` mints one locally).

use crate::{GRAPHQL_PATH, GRAPHQL_WS_PATH};

/// The page, with its assets under `assets` (a path on this server).
pub fn page(assets: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>SeatGrid GraphQL</title>
  <style>body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }} #graphiql {{ height: 100vh; }}</style>
  <link rel="stylesheet" href="{assets}/graphiql.min.css">
  <script src="{assets}/react.production.min.js"></script>
  <script src="{assets}/react-dom.production.min.js"></script>
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script src="{assets}/graphiql.min.js"></script>
  <script>
    const at = (path, ws) => {{
      const url = new URL(path, window.location.origin);
      if (ws) url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      return url.toString();
    }};
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {{
        fetcher: GraphiQL.createFetcher({{
          url: at('{GRAPHQL_PATH}', false),
          subscriptionUrl: at('{GRAPHQL_WS_PATH}', true),
        }}),
        defaultEditorToolsVisibility: true,
        defaultQuery: '# Events on sale; add a bearer token in Headers for mutations.\n{{ events(first: 5) {{ edges {{ node {{ id name seatCount }} }} }} }}\n',
      }}),
    );
  </script>
</body>
</html>"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_loads_its_assets_from_this_server_only() {
        let page = super::page("/assets/x");
        assert!(page.contains(r#"src="/assets/x/graphiql.min.js""#));
        assert!(!page.contains("https://"), "no CDN");
    }
}
