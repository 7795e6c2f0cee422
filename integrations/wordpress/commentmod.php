<?php
/**
 * Plugin Name: commentmod connector
 * Description: Sends the Akismet plugin's API calls, and only those, to the commentmod server named by COMMENTMOD_URL in wp-config.php.
 * Version: 1.0
 * License: MIT
 *
 * Install: copy this file to wp-content/mu-plugins/commentmod.php and add
 *     define( 'COMMENTMOD_URL', 'https://commentmod.example' );
 * to wp-config.php, then paste the key from `commentmod keys create --site URL`
 * into Settings > Akismet Anti-spam. Without COMMENTMOD_URL nothing changes: the
 * Akismet plugin talks to Akismet. Every other request of WordPress is left alone.
 */

defined( 'ABSPATH' ) || exit;

add_filter( 'pre_http_request', 'commentmod_route_akismet', 10, 3 );

/**
 * Answers a request for rest.akismet.com with the same request made to COMMENTMOD_URL.
 *
 * The Akismet plugin names its host in the URL (https, then http) or, when it
 * probes a server by IP address, in the Host header; both are matched.
 *
 * @param false|array|WP_Error $preempt A response another filter already chose, or false.
 * @param array                $args    The request's arguments (method, headers, body...).
 * @param string               $url     The URL requested.
 * @return false|array|WP_Error
 */
function commentmod_route_akismet( $preempt, $args, $url ) {
	if ( false !== $preempt || ! defined( 'COMMENTMOD_URL' ) || ! COMMENTMOD_URL ) {
		return $preempt;
	}
	$parts = wp_parse_url( $url );
	$named = isset( $parts['host'] ) ? strtolower( $parts['host'] ) : '';
	if ( isset( $args['headers'] ) && is_array( $args['headers'] ) ) {
		foreach ( $args['headers'] as $name => $value ) {
			if ( 'host' === strtolower( $name ) ) {
				if ( is_string( $value ) && 'rest.akismet.com' === strtolower( $value ) ) {
					$named = 'rest.akismet.com';
				}
				unset( $args['headers'][ $name ] ); // commentmod's own host name goes instead
			}
		}
	}
	if ( 'rest.akismet.com' !== $named ) {
		return $preempt;
	}
	$target = untrailingslashit( COMMENTMOD_URL ) . ( isset( $parts['path'] ) ? $parts['path'] : '/' );
	if ( isset( $parts['query'] ) ) {
		$target .= '?' . $parts['query'];
	}
	return wp_remote_request( $target, $args );
}

add_action( 'admin_init', 'commentmod_blank_akismet_charts' );

/**
 * The plugin's settings page embeds charts from tools.akismet.com with the site's
 * key in the address: the browser would send a commentmod key to Akismet. Those
 * frames are left empty instead (the counts beside them come from commentmod).
 */
function commentmod_blank_akismet_charts() {
	if ( defined( 'COMMENTMOD_URL' ) && COMMENTMOD_URL && isset( $_GET['page'] ) && 'akismet-key-config' === $_GET['page'] ) {
		ob_start(
			function ( $html ) {
				return preg_replace( '#https?://tools\.akismet\.com/[^"\'\s]*#', 'about:blank', $html );
			}
		);
	}
}
